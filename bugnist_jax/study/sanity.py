"""Sanity checks for saliency maps (Adebayo et al. 2018) on a trained run.

  python -m bugnist_jax.study.sanity --workdir=runs/sanity --run=runs/shortcut_study/raw \
      --config=configs/shortcut_study.py

Model parameter randomisation: the run's layers are re-initialised cumulatively from the top
(logits, dense1, block4, ... block1) and each method's maps on a few test volumes are compared
with the trained model's maps (Spearman rank correlation, signed and absolute, and SSIM). Data
randomisation: a model of the same config trained on permuted labels (`data.shuffle_labels`,
in DIR/shuffled_labels, resumable) is explained on the same volumes and compared the same way.
A method whose maps barely change (guided backprop, famously) does not explain the model.
Writes DIR/sanity.json, DIR/figures/*.png and DIR/report.html.
"""

import json
import pathlib
import time
from types import SimpleNamespace

import jax
import numpy as np
from absl import app, flags
from flax import nnx
from matplotlib.figure import Figure
from ml_collections import config_flags

from bugnist_jax import saliency, viz
from bugnist_jax.attribution import METHODS, Options
from bugnist_jax.config_defaults import with_overrides
from bugnist_jax.errors import UserError, parse_flags, run_main
from bugnist_jax.models.adapters import eval_view
from bugnist_jax.models.planes import compiler_options
from bugnist_jax.study.common import load_run
from bugnist_jax.study.report import HtmlReport
from bugnist_jax.training.evaluation import evaluate_run
from bugnist_jax.training.loop import say, train_and_evaluate

SIMILARITIES = ("spearman_abs", "spearman", "ssim")


def make_explain(model, method: str, targets: np.ndarray, opts: Options, layer: str):
  """(explain(params, x) -> maps [B, *spatial] jitted, params): `method` on the model rebuilt
  from `params`, a pytree keyed by stage name (the model's `nnx.Param`s).

  Maps keep their sign (channels summed) so the signed and absolute Spearman differ.
  """
  if method not in METHODS:
    raise UserError(f"config.study.sanity_methods: unknown {method!r}; valid: {', '.join(METHODS)}")
  graphdef, params, rest = nnx.split(eval_view(model), nnx.Param, ...)
  spec = METHODS[method]

  def explain(p, x):
    m = nnx.merge(graphdef, p, rest)
    bound = SimpleNamespace(
      f=lambda v: m.forward(v)[0],
      features=lambda v: m.forward(v, stop=layer)[0],
      head=lambda a: m.forward(a, start=layer)[0],
    )
    maps = spec.run(bound, x, targets, opts)
    return maps if spec.cam else maps.sum(-1)

  return jax.jit(explain, compiler_options=compiler_options()), params


def plot_randomization(results: dict, layers: list[str], path: pathlib.Path) -> Figure:
  """One panel per similarity, one line per method: mean over volumes against layers randomised."""
  fig = Figure(figsize=(5.0 * len(SIMILARITIES), 4.0), layout="constrained")
  axes = fig.subplots(1, len(SIMILARITIES), squeeze=False)[0]
  steps = np.arange(len(layers))
  for ax, sim in zip(axes, SIMILARITIES, strict=True):
    for method, r in results.items():
      ax.plot(steps, [_nanmean(v) for v in r[sim]], marker="o", ms=3, label=method)
    ax.set_xticks(steps, layers, rotation=45, fontsize=8)
    ax.set_ylim(-0.4, 1.05)
    ax.set_title(f"{sim} with the trained model's maps")
    ax.set_xlabel("randomised down to")
    ax.grid(True, alpha=0.3)
  axes[0].legend(fontsize=8)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=110)
  return fig


def _nanmean(v) -> float:
  """Mean of the finite values; nan (without numpy's warning) when there are none."""
  v = np.asarray(v, float)
  return float(np.mean(v[np.isfinite(v)])) if np.isfinite(v).any() else float("nan")


def _mean_rows(cascade: dict, layers: list[str], sim: str) -> list[dict]:
  return [
    {"method": m, **{layer: _nanmean(v) for layer, v in zip(layers, np.asarray(r[sim]),
                                                                    strict=True)}}
    for m, r in cascade.items()
  ]  # fmt: skip


def write_report(config, workdir, run_dir, cascade, layers, data_rand, figures, wall_s):
  rep = HtmlReport(workdir / "report.html", "Saliency sanity checks (Adebayo et al. 2018)")
  rep.paragraph(
    f"Run {run_dir}; {config.study.sanity_examples} test volumes; targets are the true classes; "
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
  workdir, run_dir = pathlib.Path(workdir), pathlib.Path(run_dir)
  workdir.mkdir(parents=True, exist_ok=True)
  start = time.perf_counter()
  s = config.study
  run_config, info, model, vols = load_run(run_dir, s.sanity_examples)
  x = info.normalization(vols.images)
  targets = vols.labels
  opts = Options(num_samples=s.smoothgrad_samples, steps=s.ig_steps, layer=s.cam_layer,
                 seed=s.seed)  # fmt: skip
  order = list(reversed(model.layer_names))
  layers = ["original", *order]
  key = jax.random.key(s.seed)
  cascade, original = {}, {}
  for method in s.sanity_methods:
    t = time.perf_counter()
    explain, params = make_explain(model, method, targets, opts, s.cam_layer)
    original[method] = np.asarray(explain(params, x))
    r = saliency.cascading_randomization(explain, params, order, x, key=key)
    cascade[method] = {k: np.asarray(r[k]).tolist() for k in r if k != "layers"}
    final = _nanmean(cascade[method]["spearman_abs"][-1])
    say(f"  {method}: spearman_abs {final:.3f} after all layers ({time.perf_counter() - t:.1f}s)")
  figures = {"curves": workdir / "figures" / "cascading_randomization.png"}
  plot_randomization(cascade, layers, figures["curves"])
  data_rand = {}
  if s.random_label_epochs > 0:
    data_rand = data_randomization(config, run_config, workdir, original, vols, opts)
    figures["data_maps"] = workdir / "figures" / "data_randomization_maps.png"
    methods = list(original)
    random_maps = data_rand.pop("maps")
    grid = [[original[m][0], random_maps[m][0]] for m in methods]
    viz.plot_map_grid(
      [vols.raw[0]] * len(methods), grid, ["trained", "random labels"], figures["data_maps"],
      title="data randomisation", row_labels=methods,
    )  # fmt: skip
  wall = time.perf_counter() - start
  out = {"run": str(run_dir), "layers": layers, "cascading": cascade, "data_randomization":
         data_rand, "wall_s": wall}  # fmt: skip
  (workdir / "sanity.json").write_text(json.dumps(out, indent=2, allow_nan=True))
  path = write_report(config, workdir, run_dir, cascade, layers, data_rand, figures, wall)
  say(f"wrote {path} ({wall / 60:.1f} min)")
  return out


def data_randomization(config, run_config, workdir, original: dict, vols, opts) -> dict:
  """Trains the run's config on permuted labels and compares its maps with `original`."""
  s = config.study
  cfg = with_overrides(run_config, **{"data.shuffle_labels": True,
                                      "train.num_epochs": int(s.random_label_epochs)})  # fmt: skip
  shuffled_dir = workdir / "shuffled_labels"
  say(f"== training on permuted labels in {shuffled_dir}")
  train_and_evaluate(cfg, shuffled_dir)
  accuracy = evaluate_run(shuffled_dir, ("test",))["test"]["accuracy"]
  _, info, model, _ = load_run(shuffled_dir, 1)
  x = info.normalization(vols.images)
  rows, maps = [], {}
  for method, ref in original.items():
    explain, params = make_explain(model, method, vols.labels, opts, s.cam_layer)
    maps[method] = np.asarray(explain(params, x))
    sims = saliency.compare_maps(ref, maps[method])
    rows.append({"method": method, **{k: _nanmean(v) for k, v in sims.items()}})
  return {"accuracy": accuracy, "rows": rows, "maps": maps}


def _define_flags() -> None:
  # Defined here, not at import, so tests can import both studies (they share flag names).
  flags.DEFINE_string("workdir", None, "Folder for the sanity study.")
  flags.DEFINE_string("run", None, "Workdir of the trained run to check.")
  config_flags.DEFINE_config_file("config", None, "Study config (configs/shortcut_study.py).",
                                  lock_config=True)  # fmt: skip
  flags.mark_flags_as_required(["workdir", "run", "config"])


@run_main
def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  f = flags.FLAGS
  if "study" not in f.config:
    raise UserError("--config: needs a `study` section (see configs/shortcut_study.py)")
  run_sanity(f.config, f.workdir, f.run)


if __name__ == "__main__":
  _define_flags()
  app.run(main, flags_parser=parse_flags)
