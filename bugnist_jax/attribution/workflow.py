"""Explain items of a trained run with saliency maps: figures, arrays and ImageJ TIFFs.

The library behind `python -m bugnist_jax.explain`; `ExplainRequest` is its one argument and
its fields are the command's flags.
"""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np

from bugnist_jax import viz
from bugnist_jax.attribution.methods import Explainer, Options, check_methods, display_map
from bugnist_jax.log import say
from bugnist_jax.options import option, validate
from bugnist_jax.progress import track
from bugnist_jax.runs import Run


@dataclasses.dataclass(frozen=True)
class ExplainRequest:
  """What to explain and how; `options` are the methods' knobs."""

  method: tuple[str, ...] = option(("smoothgrad",), "Methods (bugnist_jax.attribution.METHODS).")
  split: str = option("test", "Split to take items from.")
  indices: tuple[int, ...] = option((), "Item positions in the split (default: random).", min=0)
  num_random: int = option(4, "Random items when --indices is empty.", min=1)
  target: str = option("predicted", "Class to explain.", choices=("predicted", "true"))
  sigma_sweep: tuple[float, ...] = option((), "SmoothGrad sigmas for a sweep figure.", above=0.0)
  curves: int = option(
    0,
    "Steps of a deletion (MoRF) and an insertion curve per method, hidden voxels set to "
    "--baseline (0: no curves).",
    min=0,
  )
  tiff: bool = option(True, "Write ImageJ TIFFs of each item and its maps.")
  step: int | None = option(None, "Checkpoint step (default: best by validation).", min=0)
  data_root: str | None = option(None, "Data folder, if it moved since training.")
  options: Options = dataclasses.field(default_factory=Options)


def _pick_items(n: int, request: ExplainRequest) -> np.ndarray:
  if request.indices:
    return np.asarray(request.indices, np.int64)
  rng = np.random.default_rng(request.options.seed)
  return np.sort(rng.choice(n, min(request.num_random, n), replace=False))


def explain_run(workdir, request: ExplainRequest | None = None) -> dict[str, np.ndarray]:
  """Explains items of the run in `workdir`; returns {method: maps} and writes
  `workdir/explain/`: per item and method a figure, per item a figure of every method and a
  TIFF, a grid of every method, the sigma sweep, the raw maps as .npz, and with `curves` the
  deletion/insertion figures and `faithfulness.json`."""
  request = validate(request or ExplainRequest())
  methods, opts = check_methods(request.method), request.options
  run = Run.open(workdir, request.step, request.data_root)
  items = run.records(request.split, _pick_items(len(run.split(request.split)), request))
  picked, labels = items["index"], items["label"]
  x = run.inputs(items["image"])
  explainer = Explainer(run.bound(opts.layer), run.normalization)
  probs = np.asarray(jax.nn.softmax(explainer.f(x), axis=-1))
  preds = probs.argmax(-1)
  targets = jnp.asarray(preds if request.target == "predicted" else labels)
  names, split = run.class_names, request.split
  out = run.workdir / "explain"
  out.mkdir(parents=True, exist_ok=True)
  shown = [im[..., 0] if im.shape[-1] == 1 else im for im in items["image"]]
  titles = [
    f"{split} #{i}  true: {names[y]}  predicted: {names[p]} ({probs[k, p]:.2f})"
    for k, (i, y, p) in enumerate(zip(picked, labels, preds, strict=True))
  ]
  short = [f"#{i} {names[y]}->{names[p]}" for i, y, p in zip(picked, labels, preds, strict=True)]
  maps, display = {}, {}
  for method in track(methods, "explaining", unit="method"):
    say(f"explaining {len(picked)} items with {method} ...")
    maps[method] = explainer(method, x, targets, opts)
    display[method] = display_map(method, maps[method])
    np.savez_compressed(
      out / f"{method}.npz",
      maps=maps[method],
      indices=picked,
      labels=labels,
      predictions=preds,
      targets=np.asarray(targets),
    )
    for k, i in enumerate(picked):
      viz.plot_explanation(
        shown[k],
        {method: display[method][k]},
        out / f"{split}_{i:05d}_{method}.png",
        f"{titles[k]}  {method}",
      )
  for k, i in enumerate(picked):
    per_item = {m: v[k] for m, v in display.items()}
    if len(methods) > 1:
      viz.plot_explanation(shown[k], per_item, out / f"{split}_{i:05d}_methods.png", titles[k])
    if request.tiff:
      viz.save_stack(out / f"{split}_{i:05d}.tif", shown[k], per_item)
  if len(methods) > 1:
    viz.plot_method_grid(
      shown,
      [[display[m][k] for m in methods] for k in range(len(picked))],
      list(methods),
      out / f"{split}_methods.png",
      f"{split}: every method",
      row_labels=short,
    )
  if request.sigma_sweep:
    sweep = [
      display_map(
        "smoothgrad", explainer("smoothgrad", x, targets, dataclasses.replace(opts, sigma=s))
      )
      for s in request.sigma_sweep
    ]
    viz.plot_method_grid(
      shown,
      [[m[k] for m in sweep] for k in range(len(picked))],
      [f"sigma={s:g}" for s in request.sigma_sweep],
      out / f"{split}_sigma_sweep.png",
      "SmoothGrad sigma sweep",
      row_labels=short,
    )
  if request.curves:
    _write_curves(explainer, display, x, targets, request, out, picked)
  say(f"wrote figures and maps for {len(picked)} items to {out}")
  return maps


def _write_curves(explainer: Explainer, display, x, targets, request, out, picked) -> None:
  """Deletion and insertion curves of every method's display maps: `{split}_deletion.png`,
  `{split}_insertion.png` (mean +- sd over the items) and `faithfulness.json` (per-item AUCs
  and curves, with the baseline they used)."""
  opts, steps = request.options, request.curves
  say(f"deletion and insertion curves ({steps} steps, baseline {opts.baseline}) ...")
  found = {m: explainer.curves(maps, x, targets, opts, steps) for m, maps in display.items()}
  doc = {"baseline": opts.baseline, "num_steps": steps, "indices": picked.tolist(), "methods": {}}
  for method, kinds in found.items():
    doc["methods"][method] = {
      f"{kind}_{part}": value.tolist()
      for kind, (curve, auc) in kinds.items()
      for part, value in (("auc", auc), ("curve", curve))
    }
  (out / "faithfulness.json").write_text(json.dumps(doc, indent=1))
  fraction = np.linspace(0.0, 1.0, steps + 1)
  for kind, goal in (("deletion", "lower"), ("insertion", "higher")):
    viz.plot_curves(
      fraction,
      {m: kinds[kind][0] for m, kinds in found.items()},
      out / f"{request.split}_{kind}.png",
      xlabel="fraction of voxels " + ("removed" if kind == "deletion" else "revealed"),
      ylabel="target probability",
      title=f"{kind} (baseline {opts.baseline}; area {goal} is better)",
    )
