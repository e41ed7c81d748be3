"""Shortcut-learning study: does the model look at the bug or at the cotton packing?

  python -m bugnist_jax.study.shortcut --workdir=runs/shortcut_study \
      --config=configs/shortcut_study.py

Trains one model per condition on the same synthetic volumes with a strong cotton shortcut,
each in its own sub-workdir (resumable; `bugnist_jax.evaluate` / `explain` work on them):
  raw             volumes with cotton;
  cotton_removed  `data.remove_packing` (threshold + largest connected component);
  right_reasons   volumes with cotton, plus Ross et al.'s penalty on input gradients outside
                  the bug mask (`train.extra_loss='right_reasons'`).
Then, per condition: test accuracy and confusion matrix (`evaluate_run`), and for each saliency
method the shortcut score (share of attribution on the cotton vs the bug, from the ground-truth
masks), localisation metrics against the bug mask (relevance mass and rank accuracy, pointing
game, energy pointing game) overall and per class, and ROAD deletion / insertion AUCs on a
subset. Writes DIR/results.json, DIR/figures/*.png and DIR/report.html.
The masks come from the records (`object_mask`, `shortcut_mask`), so any source that has both
(the synthetic volumes; a 2D source with a confound) can be studied.
"""

import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

from bugnist_jax import saliency, validation, viz
from bugnist_jax.attribution import Explainer, Options
from bugnist_jax.config_defaults import with_overrides
from bugnist_jax.errors import UserError
from bugnist_jax.evaluation import evaluate_run
from bugnist_jax.log import say
from bugnist_jax.progress import track
from bugnist_jax.runs import Run
from bugnist_jax.study import finish
from bugnist_jax.training.loop import train_and_evaluate

# Condition -> config overrides on top of the study's base config.
CONDITIONS = {
  "raw": lambda c: {},
  "cotton_removed": lambda c: {"data.remove_packing": True},
  "right_reasons": lambda c: {
    "train.extra_loss": "right_reasons",
    "train.extra_loss_weight": float(c.study.right_reasons_weight),
  },
}
# Localisation metrics against the bug mask: name -> fn(maps, bug) -> [B].
LOCALISATION = {
  "relevance_mass": saliency.relevance_mass_accuracy,
  "rank_accuracy": saliency.relevance_rank_accuracy,
  "pointing_game": saliency.pointing_game,
  "energy_pointing_game": saliency.energy_pointing_game,
}


def condition_config(config, name: str):
  """The training config of condition `name`."""
  if name not in CONDITIONS:
    raise UserError(f"config.study.conditions: unknown {name!r}; valid: {', '.join(CONDITIONS)}")
  return with_overrides(config, **CONDITIONS[name](config))


def attribution_metrics(maps: np.ndarray, bug: np.ndarray, cotton: np.ndarray) -> dict:
  """Per-sample scores `[B]` of maps `[B, *spatial]` against the object (bug) and shortcut
  (cotton) masks.

  `shortcut_score` is on_cotton / (on_cotton + on_bug) of |map|; `on_cotton` / `on_bug` are
  shares of all |map|; `points_at_cotton` is the pointing game against the cotton.
  """
  m, b, c = jnp.asarray(maps), jnp.asarray(bug), jnp.asarray(cotton)
  sc = saliency.shortcut_score(m, b, c)
  out = {"shortcut_score": sc.ratio, "on_cotton": sc.on_shortcut, "on_bug": sc.on_object}
  out |= {name: fn(m, b) for name, fn in LOCALISATION.items()}
  out["points_at_cotton"] = saliency.pointing_game(m, c)
  return {k: np.asarray(v) for k, v in out.items()}


def summarise(scores: dict[str, np.ndarray], labels: np.ndarray, num_classes: int) -> dict:
  """{metric: {'mean': float, 'per_class': [K] list}} (nan-skipping means)."""
  return {
    k: {
      "mean": float(np.nanmean(v)) if np.isfinite(v).any() else float("nan"),
      "per_class": np.asarray(
        saliency.per_class_mean(jnp.asarray(v), jnp.asarray(labels), num_classes)
      ).tolist(),
    }
    for k, v in scores.items()
  }


def faithfulness(f, x, maps, targets, steps: int) -> dict[str, float]:
  """Mean ROAD deletion (MoRF, lower is better) and insertion (higher is better) AUCs of maps
  `[B, *spatial]` for the model `f(x) -> logits`."""
  args = (f, jnp.asarray(x), jnp.asarray(maps), jnp.asarray(targets))
  _, deletion = saliency.deletion_curve(*args, num_steps=steps, baseline="road")
  _, insertion = saliency.insertion_curve(*args, num_steps=steps, baseline="road")
  return {"deletion_auc": float(np.mean(deletion)), "insertion_auc": float(np.mean(insertion))}


def packing_quality(items: dict) -> dict[str, float]:
  """How well the cotton removal worked on these items: shares of bug / cotton voxels kept."""
  kept = items["image"][..., 0] > 0
  bug, cot = items["object_mask"] > 0, items["shortcut_mask"] > 0
  spatial = tuple(range(1, kept.ndim))
  return {
    "bug_voxels_kept": float((kept & bug).sum() / max(bug.sum(), 1)),
    "cotton_voxels_kept": float((kept & cot).sum() / max(cot.sum(), 1)),
    "volumes_without_bug": float(np.mean(~(kept & bug).any(axis=spatial))),
  }


def analyse_condition(config, run_dir: pathlib.Path) -> tuple[dict, dict]:
  """Numbers of one trained condition, and the maps of the figure items {method: [n, ...]}."""
  s = config.study
  run = Run.open(run_dir)
  items = run.records("test", range(min(s.num_explain, len(run.split("test")))))
  if "object_mask" not in items or "shortcut_mask" not in items:
    raise UserError(
      f"{run_dir}: the shortcut study needs a source whose records have "
      "object_mask and shortcut_mask (e.g. synthetic3d)"
    )
  labels, num_classes = items["label"], len(run.class_names)
  accuracy = evaluate_run(run_dir, ("test",))["test"]["accuracy"]
  x = np.asarray(run.inputs(items["image"]))
  explainer = Explainer(run.bound(s.cam_layer), run.normalization)
  opts = Options(num_samples=s.smoothgrad_samples, steps=s.ig_steps, layer=s.cam_layer, seed=s.seed)
  result = {"accuracy": accuracy, "methods": {}}
  if config.data.remove_packing:
    result["packing_removal"] = packing_quality(items)
  figure_maps = {}
  nf = s.num_faithfulness
  for method in s.methods:
    t = time.perf_counter()
    maps = explainer.display_in_batches(method, x, labels, opts, s.batch_size)
    scores = attribution_metrics(maps, items["object_mask"], items["shortcut_mask"])
    entry = summarise(scores, labels, num_classes)
    if nf > 0:
      entry["faithfulness"] = faithfulness(
        explainer.f, x[:nf], maps[:nf], labels[:nf], s.faithfulness_steps
      )
    result["methods"][method] = entry
    figure_maps[method] = maps[: s.num_figure]
    say(
      f"  {method}: shortcut score {entry['shortcut_score']['mean']:.3f}, pointing game "
      f"{entry['pointing_game']['mean']:.3f} ({time.perf_counter() - t:.1f}s)"
    )
  raw = items["raw_image"][: s.num_figure]
  shown = {"maps": figure_maps, "raw": raw[..., 0] if raw.shape[-1] == 1 else raw}
  shown |= {"labels": labels[: s.num_figure], "class_names": run.class_names}
  return result, shown


def bar_panels(results: dict, metrics: list[str]) -> dict:
  """{metric: {method: {condition: mean}}} for `viz.plot_grouped_bars`."""
  methods = list(next(iter(results.values()))["methods"])
  return {
    metric: {m: {c: r["methods"][m][metric]["mean"] for c, r in results.items()} for m in methods}
    for metric in metrics
  }


def _summary_rows(results: dict) -> list[dict]:
  rows = []
  for cond, r in results.items():
    for method, e in r["methods"].items():
      row = {"model": cond, "accuracy": r["accuracy"], "method": method}
      row |= {k: v["mean"] for k, v in e.items() if k != "faithfulness"}
      row |= e.get("faithfulness", {})
      rows.append(row)
  return rows


def _per_class_rows(results: dict, method: str, metric: str, class_names) -> list[dict]:
  return [
    {"class": name, **{c: r["methods"][method][metric]["per_class"][k] for c, r in results.items()}}
    for k, name in enumerate(class_names)
  ]


def _conclusion(results: dict, method: str) -> str:
  parts = [
    f"{c}: accuracy {r['accuracy']:.3f}, shortcut score "
    f"{r['methods'][method]['shortcut_score']['mean']:.3f}, pointing game "
    f"{r['methods'][method]['pointing_game']['mean']:.3f}"
    for c, r in results.items()
  ]
  return f"With {method}: " + "; ".join(parts) + "."


def write_report(config, workdir: pathlib.Path, results: dict, figures: dict, wall_s: float):
  """DIR/report.html: summary, bars, per-class tables, map grids, confusion matrices, config."""
  method0 = config.study.methods[0]
  rep = viz.HtmlReport(workdir / "report.html", "Shortcut-learning study")
  rep.paragraph(
    f"Synthetic BugNIST-like volumes {tuple(config.data.shape)}, shortcut strength "
    f"{config.data.shortcut_strength}, {config.data.num_examples} examples; models: "
    f"{', '.join(results)}; study wall time {wall_s / 60:.1f} min. Targets are the true classes; "
    "shortcut score = attribution on cotton / (on cotton + on bug), 1 = cotton only."
  )
  rep.paragraph(_conclusion(results, method0))
  rep.section("Summary (test volumes)")
  rep.table(_summary_rows(results))
  rep.image(figures["bars"], "Shortcut score and pointing game per model and method")
  for cond, r in results.items():
    if "packing_removal" in r:
      rep.section(f"Cotton removal quality ({cond})")
      rep.table([r["packing_removal"]])
  for metric in ("shortcut_score", "pointing_game"):
    rep.section(f"Per class: {metric.replace('_', ' ')} ({method0})")
    rep.table(_per_class_rows(results, method0, metric, figures["class_names"]))
  rep.section("Maps", "Rows: test volumes (shown with cotton); columns: models. MIPs of |map|.")
  for method, path in figures["maps"].items():
    rep.image(path, method)
  rep.section("Confusion matrices (test)")
  for cond in results:
    rep.image(workdir / cond / "eval" / "confusion_test.png", cond)
  rep.pre(config.to_json_best_effort(indent=2), "Config")
  return rep.write()


def run_study(config, workdir: str | pathlib.Path) -> dict:
  """Trains (or resumes) every condition, analyses them, writes figures, JSON and report."""
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  start = time.perf_counter()
  configs = {name: condition_config(config, name) for name in config.study.conditions}
  for cfg in configs.values():  # every condition's config before the first one trains
    validation.check_config(cfg, jax.device_count())
  results, shown = {}, {}
  for name, cfg in track(configs.items(), "shortcut study", unit="model", total=len(configs)):
    say(f"== {name}: training in {workdir / name}")
    train_and_evaluate(cfg, workdir / name)
    results[name], shown[name] = analyse_condition(cfg, workdir / name)
  fig_dir = workdir / "figures"
  first = shown[config.study.conditions[0]]
  names = first["class_names"]
  figures = {"bars": fig_dir / "shortcut_bars.png", "maps": {}, "class_names": names}
  viz.plot_grouped_bars(bar_panels(results, ["shortcut_score", "pointing_game"]), figures["bars"])
  row_labels = [f"{names[y]}" for y in first["labels"]]
  for method in config.study.methods:
    path = fig_dir / f"maps_{method}.png"
    grid = [[shown[c]["maps"][method][i] for c in results] for i in range(len(first["raw"]))]
    viz.plot_method_grid(
      list(first["raw"]), grid, list(results), path, title=method, row_labels=row_labels
    )
    figures["maps"][method] = path
  out = {"class_names": list(names), "results": results}
  report = lambda wall: write_report(config, workdir, results, figures, wall)
  return finish(workdir, out, report, start)


if __name__ == "__main__":  # python -m bugnist_jax.study.shortcut: bugnist_jax.commands
  from bugnist_jax.commands.shortcut_study import run

  run()
