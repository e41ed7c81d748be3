"""Sanity checks for saliency maps (Adebayo et al. 2018) on a trained run.

  python -m bugnist_jax.study.sanity --workdir=runs/sanity --run=runs/shortcut_study/raw \
      --config=configs/shortcut_study.py

Model parameter randomisation: the run's layers are re-initialised cumulatively from the top
(logits, dense1, block4, ... block1) and each method's maps on a few test volumes are compared
with the trained model's maps (Spearman rank correlation, signed and absolute, and SSIM). Data
randomisation: a model of the same config trained on permuted labels
(`data.regime='shuffled_labels'`, in DIR/shuffled_labels, resumable) is explained on the same
volumes and compared the same way.
A method whose maps barely change (guided backprop, famously) does not explain the model.
Writes DIR/results.json, DIR/figures/*.png and DIR/report.html.
"""

import pathlib
import time

import jax
import numpy as np
from flax import nnx

from bugnist_jax import compile, saliency, validation, viz
from bugnist_jax.attribution import Options, check_methods, display_map, run_method
from bugnist_jax.config_defaults import with_overrides
from bugnist_jax.evaluation import evaluate_run
from bugnist_jax.log import say
from bugnist_jax.models.adapters import Bound
from bugnist_jax.progress import track
from bugnist_jax.runs import Run
from bugnist_jax.study import finish
from bugnist_jax.training.loop import train_and_evaluate

SIMILARITIES = ("spearman_abs", "spearman", "ssim")


def make_explain(model, method: str, targets: np.ndarray, opts: Options, layer: str):
  """(explain(params, x) -> maps [B, *spatial] compiled, params): `method` on the model rebuilt
  from `params`, a pytree keyed by stage name (the model's `nnx.Param`s).

  Maps keep their sign (channels summed) so the signed and absolute Spearman differ.
  """
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)

  def explain(p, x):
    bound = Bound.from_state(graphdef, p, rest, layer=layer)
    return display_map(method, run_method(bound, method, x, targets, opts), signed=True)

  return compile.jit(explain), params


def _options(s) -> Options:
  return Options(num_samples=s.smoothgrad_samples, steps=s.ig_steps, layer=s.cam_layer, seed=s.seed)


def _nanmean(v) -> float:
  """Mean of the finite values; nan (without numpy's warning) when there are none."""
  v = np.asarray(v, float)
  return float(np.mean(v[np.isfinite(v)])) if np.isfinite(v).any() else float("nan")


def _mean_rows(cascade: dict, layers: list[str], sim: str) -> list[dict]:
  return [
    {
      "method": m,
      **{layer: _nanmean(v) for layer, v in zip(layers, np.asarray(r[sim]), strict=True)},
    }
    for m, r in cascade.items()
  ]


def write_report(config, workdir, run_dir, cascade, layers, data_rand, figures, wall_s):
  rep = viz.HtmlReport(workdir / "report.html", "Saliency sanity checks (Adebayo et al. 2018)")
  rep.paragraph(
    f"Run {run_dir}; {config.sanity.num_examples} test volumes; targets are the true classes; "
    f"wall time {wall_s / 60:.1f} min. Similarity of each method's maps with the trained "
    "model's maps (1 = unchanged). A sound method's maps decorrelate as layers are randomised."
  )
  rep.section("Cascading model parameter randomisation")
  rep.image(figures["curves"], "Mean similarity per method as layers are randomised from the top")
  for sim in SIMILARITIES:
    rep.paragraph(f"{sim} (mean over volumes); column = last layer randomised:")
    rep.table(_mean_rows(cascade, layers, sim))
  if data_rand:
    rep.section(
      "Data randomisation",
      "Maps of a model trained on permuted labels against the trained model's maps "
      f"(random-label model test accuracy {data_rand['accuracy']:.3f}).",
    )
    rep.table(data_rand["rows"])
    rep.image(figures["data_maps"], "One test volume: trained vs random-label model per method")
  rep.pre(config.to_json_best_effort(indent=2), "Config")
  return rep.write()


def run_sanity(config, workdir: str | pathlib.Path, run_dir: str | pathlib.Path) -> dict:
  """Both randomisation tests on the trained run in `run_dir`; writes DIR/sanity.json etc."""
  validation.check_config(config, jax.device_count())  # before any work
  workdir, run_dir = pathlib.Path(workdir), pathlib.Path(run_dir)
  workdir.mkdir(parents=True, exist_ok=True)
  start = time.perf_counter()
  s = config.sanity
  methods = check_methods(s.methods, "config.sanity.methods")
  run = Run.open(run_dir)
  items = run.records("test", range(min(s.num_examples, len(run.split("test")))))
  x, targets = run.inputs(items["image"]), items["label"]
  opts = _options(s)
  order = list(reversed(run.model.layer_names))
  layers = ["original", *order]
  key = jax.random.key(s.seed)
  cascade, original = {}, {}
  for method in track(methods, "cascading randomisation", unit="method"):
    t = time.perf_counter()
    explain, params = make_explain(run.model, method, targets, opts, s.cam_layer)
    original[method] = np.asarray(explain(params, x))
    r = saliency.cascading_randomization(explain, params, order, x, key=key)
    cascade[method] = {k: np.asarray(r[k]).tolist() for k in r if k != "layers"}
    final = _nanmean(cascade[method]["spearman_abs"][-1])
    say(f"  {method}: spearman_abs {final:.3f} after all layers ({time.perf_counter() - t:.1f}s)")
  figures = {"curves": workdir / "figures" / "cascading_randomization.png"}
  panels = {
    f"{sim} with the trained model's maps": {
      m: [_nanmean(v) for v in r[sim]] for m, r in cascade.items()
    }
    for sim in SIMILARITIES
  }
  viz.plot_line_panels(
    layers, panels, figures["curves"], xlabel="randomised down to", ylim=(-0.4, 1.05)
  )
  data_rand = {}
  if s.random_label_epochs > 0:
    data_rand = data_randomization(config, run.config, workdir, original, items, opts)
    figures["data_maps"] = workdir / "figures" / "data_randomization_maps.png"
    random_maps = data_rand.pop("maps")
    grid = [[original[m][0], random_maps[m][0]] for m in methods]
    first = items["raw_image"][0]
    viz.plot_method_grid(
      [first[..., 0] if first.shape[-1] == 1 else first] * len(methods),
      grid,
      ["trained", "random labels"],
      figures["data_maps"],
      title="data randomisation",
      row_labels=list(methods),
    )
  out = {"run": str(run_dir), "layers": layers, "cascading": cascade}
  out["data_randomization"] = data_rand
  report = lambda wall: write_report(
    config, workdir, run_dir, cascade, layers, data_rand, figures, wall
  )
  return finish(workdir, out, report, start)


def data_randomization(config, run_config, workdir, original: dict, items: dict, opts) -> dict:
  """Trains the run's config on permuted labels and compares its maps with `original`."""
  s = config.sanity
  cfg = with_overrides(
    run_config,
    **{
      "data.regime": "shuffled_labels",
      "data.shuffle_labels": False,  # the old spelling; the regime says it
      "train.num_epochs": int(s.random_label_epochs),
    },
  )
  shuffled_dir = workdir / "shuffled_labels"
  say(f"== training on permuted labels in {shuffled_dir}")
  train_and_evaluate(cfg, shuffled_dir)
  accuracy = evaluate_run(shuffled_dir, ("test",))["test"]["accuracy"]
  shuffled = Run.open(shuffled_dir)
  x = shuffled.inputs(items["image"])
  rows, maps = [], {}
  for method, ref in original.items():
    explain, params = make_explain(shuffled.model, method, items["label"], opts, s.cam_layer)
    maps[method] = np.asarray(explain(params, x))
    sims = saliency.compare_maps(ref, maps[method])
    rows.append({"method": method, **{k: _nanmean(v) for k, v in sims.items()}})
  return {"accuracy": accuracy, "rows": rows, "maps": maps}


if __name__ == "__main__":  # python -m bugnist_jax.study.sanity: bugnist_jax.commands
  from bugnist_jax.commands.sanity_study import run

  run()
