"""The explain command's library on a tiny trained 2D run with every method of the explain table,
and on a tiny trained 3D run with one method of each kind: maps, figures, arrays and TIFFs for
each, and deletion / insertion curves from a baseline given in raw intensity. (Every method on a
3D model: the contract's method table, tests/test_model_contract.py.)"""

import json

import numpy as np
import pytest
import tifffile

from bugnist_jax.attribution import METHODS, ExplainRequest, Options, explain_run

# The runs have no saliency branch: `learned` is tested on a two-branch run (test_two_branch.py).
PLAIN = [m for m, spec in METHODS.items() if spec.needs is None]
# Gradient, noise, path, perturbation, relevance, rewritten-ReLU, CAM and score-CAM families.
KINDS = (
  "vanilla_gradient", "smoothgrad", "integrated_gradients", "occlusion", "lrp",
  "guided_backprop", "grad_cam", "score_cam",
)  # fmt: skip
METHODS_OF = {"trained_run": KINDS, "trained_run_2d": tuple(PLAIN)}
BASELINE = {"trained_run": "zero", "trained_run_2d": "blur"}  # the default 'mean' runs elsewhere
# Two items in 3D (maps and figures per item of a batch); one in 2D, where every method of the
# table draws a figure per item (44 figures for two items: a third of the module's time).
INDICES = {"trained_run": (0, 1), "trained_run_2d": (1,)}


def _grouped(run, *rest):
  """A parameter of `run`: one worker explains each run once for all its tests (-n 2)."""
  return pytest.param(run, *rest, marks=pytest.mark.xdist_group(f"explain_{run}"))


RUNS = [_grouped(run) for run in METHODS_OF]
_EXPLAINED: dict[str, tuple] = {}  # run -> (workdir, maps), once per worker process


def _explained(request, run: str) -> tuple:
  """(workdir, maps) of one explain_run with the run's methods on two items of the run."""
  if run not in _EXPLAINED:
    workdir = request.getfixturevalue(run)
    opts = Options(num_samples=2, steps=2, batch_size=2, window=8, stride=8, baseline=BASELINE[run])
    explain = ExplainRequest(method=METHODS_OF[run], indices=INDICES[run], options=opts, curves=2)
    _EXPLAINED[run] = workdir, explain_run(workdir, explain)
  return _EXPLAINED[run]


@pytest.mark.parametrize(
  ("run", "method"), [_grouped(run, m) for run, methods in METHODS_OF.items() for m in methods]
)
def test_method_runs_through_explain(request, run, method):
  workdir, maps = _explained(request, run)
  m = maps[method]
  image_shape = np.load(workdir / "explain" / f"{method}.npz")["maps"].shape
  assert m.shape == image_shape and m.shape[0] == len(INDICES[run])
  assert np.isfinite(m).all() and np.abs(m).sum() > 0, method
  for i in INDICES[run]:
    assert (workdir / "explain" / f"test_{i:05d}_{method}.png").stat().st_size > 5_000


@pytest.mark.parametrize("run", RUNS)
def test_every_item_has_a_figure_of_all_methods_and_a_tiff(request, run):
  workdir, _ = _explained(request, run)
  out = workdir / "explain"
  assert (out / "test_methods.png").stat().st_size > 10_000
  with tifffile.TiffFile(out / f"test_{INDICES[run][-1]:05d}.tif") as tif:
    assert tif.is_imagej
    data = tif.asarray()
  assert data.shape[-3] == 1 + len(METHODS_OF[run])  # the image, then one channel per method


@pytest.mark.parametrize("run", RUNS)
def test_every_method_gets_deletion_and_insertion_curves(request, run):
  workdir, maps = _explained(request, run)
  out = workdir / "explain"
  doc = json.loads((out / "faithfulness.json").read_text())
  n = len(INDICES[run])
  assert doc["num_steps"] == 2 and doc["indices"] == list(INDICES[run])
  assert set(doc["methods"]) == set(maps)
  assert doc["baseline"] in ("zero", "blur")
  for method, found in doc["methods"].items():
    for kind in ("deletion", "insertion"):
      curve, auc = np.asarray(found[f"{kind}_curve"]), np.asarray(found[f"{kind}_auc"])
      assert curve.shape == (n, 3) and auc.shape == (n,), method
      assert np.all((curve >= 0) & (curve <= 1)) and np.all((auc >= 0) & (auc <= 1)), method
    # Deletion starts from the input and insertion ends at it: the same probability.
    np.testing.assert_allclose(found["deletion_curve"][0][0], found["insertion_curve"][0][-1])
  for kind in ("deletion", "insertion"):
    assert (out / f"test_{kind}.png").stat().st_size > 10_000
