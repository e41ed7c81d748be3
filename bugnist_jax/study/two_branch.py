"""Two-branch study (seed 001): does a saliency branch supervised by masks or boxes give maps
that find the object, and does it help when annotations are few, transferred or fooled?

  python -m bugnist_jax.study.two_branch --config=configs/two_branch_study.py --workdir=DIR

Every run trains through `train_and_evaluate` in its own sub-workdir (resumable; evaluate,
explain and the viewer work on each). Three parts (`config.two_branch.parts`):
  sizes     for each training-set size (items per class), the conditions: plain (a plain
            classifier), box / mask (two-branch networks supervised by boxes / masks), gain
            (attention mining), right_reasons (Ross et al.'s penalty, no branch);
  transfer  pretrain on `source_classes` (plain, or with the branch and masks), fine-tune on
            a small set of `target_classes` without annotations; against the target from
            scratch;
  shortcut  the 2D images with a class-coloured corner patch (DecoyMNIST-like): does mask
            supervision keep the map on the object, and the accuracy when the patch lies?
For each run: test accuracy, and per map (`learned` where the run has a branch, and the other
methods) the pointing game, energy pointing game, IoU at `iou_threshold` of the max and
relevance mass against the object masks, overall and per class; on the shortcut part also the
share of the map on the patch and the accuracy on test images whose patch colour is random.
Writes DIR/results.json (every number in the tables), DIR/figures/*.png, DIR/report.html.
"""

import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from bugnist_jax import saliency, validation, viz
from bugnist_jax.attribution import Explainer, Options, methods_for
from bugnist_jax.config_defaults import with_overrides
from bugnist_jax.data import synthetic2d
from bugnist_jax.errors import UserError
from bugnist_jax.evaluation import evaluate_run
from bugnist_jax.log import say
from bugnist_jax.runs import Run
from bugnist_jax.study import finish
from bugnist_jax.study.shortcut import summarise
from bugnist_jax.training.loop import train_and_evaluate


def _branch(s, losses=()) -> dict:
  return {"saliency_branch.decoder": s.decoder, "train.saliency_losses": tuple(losses)}


# Condition -> config overrides from config.two_branch `s`.
CONDITIONS = {
  "plain": lambda s: {},
  "box": lambda s: _branch(s, ("box",)),
  "mask": lambda s: _branch(s, ("mask",)),
  "gain": lambda s: _branch(s, ("gain",)),
  "right_reasons": lambda s: {
    "train.extra_loss": "right_reasons",
    "train.extra_loss_weight": float(s.right_reasons_weight),
  },
}
PARTS = ("sizes", "transfer", "shortcut")
TRANSFER = ("scratch", "pretrained_plain", "pretrained_mask")
# Localisation metrics against the object mask: name -> fn(maps, masks, s) -> [B].
LOCALISATION = {
  "pointing_game": lambda m, b, s: saliency.pointing_game(m, b),
  "energy_pointing_game": lambda m, b, s: saliency.energy_pointing_game(m, b),
  "iou": lambda m, b, s: saliency.mask_iou(m, b, threshold=float(s.iou_threshold)),
  "relevance_mass": lambda m, b, s: saliency.relevance_mass_accuracy(m, b),
}


def data_overrides(config, per_class: int, classes=None) -> dict:
  """Data overrides for `per_class` training items per class and `s.eval_per_class` each for
  validation and test (the fractions of a stratified split that give those counts)."""
  s = config.two_branch
  classes = tuple(classes or config.data.classes)
  total = per_class + 2 * s.eval_per_class
  fractions = (per_class / total, s.eval_per_class / total, s.eval_per_class / total)
  return {
    "data.classes": classes,
    "data.num_examples": total * len(classes),
    "data.split_fractions": fractions,
  }


def condition_config(config, name: str, per_class: int, classes=None, **extra):
  """The training config of condition `name` with `per_class` training items per class."""
  if name not in CONDITIONS:
    raise UserError(
      f"config.two_branch.conditions: unknown {name!r}; valid: {', '.join(CONDITIONS)}"
    )
  overrides = data_overrides(config, per_class, classes) | CONDITIONS[name](config.two_branch)
  return with_overrides(config, **(overrides | extra))


def copy_matching_params(source: nnx.Module):
  """init(model) that copies every parameter of `source` whose path and shape `model` has too
  (the trunk, the branch; not logits of another class count)."""
  src = nnx.to_pure_dict(nnx.state(source, nnx.Param))

  def lookup(path):
    node = src
    for key in path:
      k = getattr(key, "key", getattr(key, "idx", None))
      if not isinstance(node, dict) or k not in node:
        return None
      node = node[k]
    return node

  def init(model):
    state = nnx.state(model, nnx.Param)

    def pick(path, value):
      found = lookup(path)
      return found if found is not None and found.shape == value.shape else value

    nnx.replace_by_pure_dict(state, jax.tree_util.tree_map_with_path(pick, nnx.to_pure_dict(state)))
    nnx.update(model, state)

  return init


def map_metrics(maps, items, s) -> dict[str, np.ndarray]:
  """Per-item scores [B] of display maps [B, *S] against the items' masks."""
  m, obj = jnp.asarray(maps), jnp.asarray(items["object_mask"])
  out = {name: fn(m, obj, s) for name, fn in LOCALISATION.items()}
  if "shortcut_mask" in items:
    out["on_shortcut"] = saliency.shortcut_score(m, obj, jnp.asarray(items["shortcut_mask"])).ratio
  return {k: np.asarray(v) for k, v in out.items()}


def analyse(config, run_dir: pathlib.Path, decoy=None) -> tuple[dict, dict]:
  """Numbers of one trained run and its figure maps {method: [n, *S]}; `decoy` (stacked
  records) adds the accuracy on them."""
  s = config.two_branch
  run = Run.open(run_dir)
  items = run.records("test", range(min(s.num_explain, len(run.split("test")))))
  labels, k = items["label"], len(run.class_names)
  explainer = Explainer(run.bound(s.cam_layer or None))
  opts = Options(num_samples=s.smoothgrad_samples, layer=s.cam_layer or None, seed=s.seed)
  result = {"accuracy": evaluate_run(run_dir, ("test",))["test"]["accuracy"], "methods": {}}
  if decoy is not None:
    logits = np.asarray(explainer.f(jnp.asarray(run.inputs(decoy["image"]))))
    result["decoy_accuracy"] = float(np.mean(logits.argmax(-1) == decoy["label"]))
  x = np.asarray(run.inputs(items["image"]))
  shown = {"raw": items["raw_image"][: s.num_figure], "maps": {}}
  for method in [m for m in s.methods if m in methods_for(run.model)]:
    maps = explainer.display_in_batches(method, x, labels, opts, s.batch_size)
    result["methods"][method] = summarise(map_metrics(maps, items, s), labels, k)
    shown["maps"][method] = maps[: s.num_figure]
  return result, shown


def _train(cfg, run_dir, init=None):
  say(f"== training {run_dir}")
  train_and_evaluate(cfg, run_dir, init=init)


def part_sizes(config, workdir: pathlib.Path) -> tuple[dict, dict]:
  s, results, shown = config.two_branch, {}, {}
  for n in s.sizes:
    results[str(n)] = {}
    for name in s.conditions:
      run_dir = workdir / "sizes" / f"n{n}" / name
      _train(condition_config(config, name, n), run_dir)
      results[str(n)][name], shown[f"sizes_n{n}_{name}"] = analyse(config, run_dir)
  return results, shown


def part_transfer(config, workdir: pathlib.Path) -> tuple[dict, dict]:
  s, results, shown = config.two_branch, {}, {}
  root = workdir / "transfer"
  pre = {"pretrained_plain": "plain", "pretrained_mask": "mask"}
  unknown = [n for n in s.transfer_conditions if n not in TRANSFER]
  if unknown:
    raise UserError(
      f"config.two_branch.transfer_conditions: unknown {unknown[0]!r}; valid: {', '.join(TRANSFER)}"
    )
  for name in s.transfer_conditions:
    init = None
    if name in pre:
      source_dir = root / f"source_{pre[name]}"
      _train(condition_config(config, pre[name], s.source_per_class, s.source_classes), source_dir)
      init = copy_matching_params(Run.open(source_dir).model)
    # The target has no annotations: the pretrained branch (if any) comes along untrained on it.
    extra = _branch(s) if name == "pretrained_mask" else {}
    cfg = condition_config(config, "plain", s.target_per_class, s.target_classes, **extra)
    _train(cfg, root / name, init)
    results[name], shown[f"transfer_{name}"] = analyse(cfg, root / name)
  return results, shown


def _decoy_records(config, n: int) -> dict:
  """Test images whose patch colour is random (the shortcut lies), unseen seed."""
  classes = tuple(config.data.classes) or synthetic2d.CLASS_NAMES
  src = synthetic2d.Synthetic2DSource(
    n, tuple(config.data.shape), config.data.seed + 1000, classes, shortcut_patch=1e-6
  )
  records = [src[i] for i in range(n)]
  return {k: np.stack([r[k] for r in records]) for k in ("image", "label")}


def part_shortcut(config, workdir: pathlib.Path) -> tuple[dict, dict]:
  s, results, shown = config.two_branch, {}, {}
  if config.data.source != "synthetic2d":
    raise UserError("config.two_branch.parts: 'shortcut' needs config.data.source=synthetic2d")
  decoy = _decoy_records(config, s.num_explain)
  for name in s.shortcut_conditions:
    cfg = condition_config(
      config, name, s.shortcut_per_class, **{"data.shortcut_patch": float(s.shortcut_patch)}
    )
    _train(cfg, workdir / "shortcut" / name)
    results[name], shown[f"shortcut_{name}"] = analyse(cfg, workdir / "shortcut" / name, decoy)
  return results, shown


def summary_rows(runs: dict, label: str) -> list[dict]:
  """One row per (run, method): accuracy and the mean of every metric."""
  rows = []
  for name, r in runs.items():
    for method, entry in r["methods"].items():
      row = {label: name, "accuracy": r["accuracy"], "method": method}
      row |= {"decoy_accuracy": r["decoy_accuracy"]} if "decoy_accuracy" in r else {}
      rows.append(row | {k: v["mean"] for k, v in entry.items()})
  return rows


def per_class_rows(runs: dict, metric: str, class_names) -> list[dict]:
  """Per class: `metric` of each (run, method)."""
  return [
    {
      "class": name,
      **{
        f"{run}/{m}": e[metric]["per_class"][k]
        for run, r in runs.items()
        for m, e in r["methods"].items()
      },
    }
    for k, name in enumerate(class_names)
  ]


def write_report(config, workdir, results, figures, wall_s) -> pathlib.Path:
  s = config.two_branch
  rep = viz.HtmlReport(workdir / "report.html", "Two-branch study (learned saliency maps)")
  rep.paragraph(
    f"{config.data.source} images {tuple(config.data.shape)}, model {config.model.name}, "
    f"decoder {s.decoder}, {s.eval_per_class} validation and test items per class; study wall "
    f"time {wall_s / 60:.1f} min. Maps against the object masks of the test items: pointing "
    f"game, energy pointing game, IoU at {s.iou_threshold} of the max, relevance mass."
  )
  groups = [(f"sizes: {n} per class", runs) for n, runs in results.get("sizes", {}).items()]
  groups += [(f"{p}", results[p]) for p in ("transfer", "shortcut") if p in results]
  for heading, runs in groups:
    rep.section(heading)
    rep.table(summary_rows(runs, "model"))
    rep.section(f"{heading}: pointing game per class")
    rep.table(per_class_rows(runs, "pointing_game", results["class_names"][heading.split(":")[0]]))
  rep.section("Maps", "Rows: test items; columns: the methods of one run.")
  for key, path in figures.items():
    rep.image(path, key)
  rep.pre(config.to_json_best_effort(indent=2), "Config")
  return rep.write()


def run_two_branch(config, workdir) -> dict:
  """Runs the parts of `config.two_branch.parts`; writes results.json, figures and report."""
  validation.check_config(config, jax.device_count())  # before any work
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  s, start = config.two_branch, time.perf_counter()
  unknown = [p for p in s.parts if p not in PARTS]
  if unknown:
    raise UserError(f"config.two_branch.parts: unknown {unknown[0]!r}; valid: {', '.join(PARTS)}")
  parts = {"sizes": part_sizes, "transfer": part_transfer, "shortcut": part_shortcut}
  results, shown = {}, {}
  classes = tuple(config.data.classes) or synthetic2d.CLASS_NAMES
  names = {"sizes": classes, "transfer": tuple(s.target_classes), "shortcut": classes}
  for part in s.parts:
    results[part], part_shown = parts[part](config, workdir)
    shown |= part_shown
  figures = {}
  for key, sh in shown.items():
    if sh["maps"]:
      path = workdir / "figures" / f"maps_{key}.png"
      methods = list(sh["maps"])
      grid = [[sh["maps"][m][i] for m in methods] for i in range(len(sh["raw"]))]
      viz.plot_method_grid(list(sh["raw"]), grid, methods, path, title=key)
      figures[key] = path
  results["class_names"] = {p: list(names[p]) for p in s.parts}
  report = lambda wall: write_report(config, workdir, results, figures, wall)
  return finish(workdir, {"results": results}, report, start)


if __name__ == "__main__":  # python -m bugnist_jax.study.two_branch: bugnist_jax.commands
  from bugnist_jax.commands.two_branch_study import run

  run()

__all__ = ["CONDITIONS", "PARTS", "copy_matching_params", "run_two_branch"]
