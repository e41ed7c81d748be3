"""Explain items of a trained run with saliency maps: figures, arrays and ImageJ TIFFs.

The library behind `python -m bugnist_jax.explain`.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from bugnist_jax import viz
from bugnist_jax.attribution import METHODS, Explainer, Options, display_map
from bugnist_jax.errors import UserError
from bugnist_jax.training.experiment import open_run
from bugnist_jax.training.loop import packing_transform


def _pick_items(n: int, indices, num_random: int, seed: int) -> np.ndarray:
  if indices:
    picked = np.array([int(i) for i in indices])
    bad = picked[(picked < 0) | (picked >= n)]
    if bad.size:
      raise UserError(f"--indices: {bad[0]} is out of range for a split of {n} items")
    return picked
  return np.sort(np.random.default_rng(seed).choice(n, min(num_random, n), replace=False))


def explain_run(
  workdir,
  methods,
  split="test",
  indices=(),
  num_random=4,
  target="predicted",
  sigma_sweep=(),
  tiff=True,
  options=None,
  step=None,
  data_root=None,
) -> dict:
  """Explains items of a trained run; returns {method: maps} and writes DIR/explain/."""
  options = options or Options()
  unknown = [m for m in methods if m not in METHODS]
  if unknown:
    raise UserError(f"--method: unknown {unknown[0]!r}; valid: {', '.join(METHODS)}")
  run = open_run(workdir, step, data_root)
  config, info, model, workdir = run.config, run.info, run.model, run.workdir
  source = run.split(split)
  picked = _pick_items(len(source), indices, num_random, options.seed)
  packing = packing_transform(config.data)
  records = [source[int(i)] for i in picked]
  if packing is not None:
    records = [packing.map(r) for r in records]
  images = np.stack([r["image"] for r in records])
  labels = np.array([int(r["label"]) for r in records])
  x = info.normalization(images)
  explainer = Explainer(model, options.layer, x)
  probs = np.asarray(jax.nn.softmax(explainer.f(x), axis=-1))
  preds = probs.argmax(-1)
  targets = jnp.asarray(preds if target == "predicted" else labels)
  names = info.class_names
  out = workdir / "explain"
  out.mkdir(parents=True, exist_ok=True)
  volumetric = images.ndim == 5
  shown = images[..., 0] if volumetric else images
  titles = [
    f"{split} #{i}  true: {names[y]}  predicted: {names[p]} ({probs[k, p]:.2f})"
    for k, (i, y, p) in enumerate(zip(picked, labels, preds, strict=True))
  ]
  short = [f"#{i} {names[y]}->{names[p]}" for i, y, p in zip(picked, labels, preds, strict=True)]
  all_maps = {}
  for method in methods:
    print(f"explaining {len(picked)} items with {method} ...", flush=True)
    maps = explainer(method, x, targets, options)
    all_maps[method] = maps
    shown_maps = display_map(method, maps)
    np.savez_compressed(out / f"{method}.npz", maps=maps, indices=picked, labels=labels,
                        predictions=preds, targets=np.asarray(targets))  # fmt: skip
    for k, i in enumerate(picked):
      path = out / f"{split}_{i:05d}_{method}.png"
      title = f"{titles[k]}  {method}"
      if volumetric:
        viz.plot_explanation_panel(shown[k], shown_maps[k], path, title=title)
      else:
        viz.plot_saliency_grid(shown[k], {method: shown_maps[k]}, path, title=title)
  shown_all = {m: display_map(m, v) for m, v in all_maps.items()}
  for k, i in enumerate(picked):
    per_item = {m: v[k] for m, v in shown_all.items()}
    if volumetric:
      if tiff:
        viz.save_imagej_stack(out / f"{split}_{i:05d}.tif", shown[k], per_item)
    elif len(methods) > 1:
      viz.plot_saliency_grid(shown[k], per_item, out / f"{split}_{i:05d}_methods.png", titles[k])
  if volumetric and len(methods) > 1:
    viz.plot_map_grid(list(shown), [[shown_all[m][k] for m in methods] for k in range(len(picked))],
                      list(methods), out / f"{split}_methods.png",
                      title=f"{split}: every method", row_labels=short)  # fmt: skip
  if sigma_sweep:
    sigmas = [float(s) for s in sigma_sweep]
    sweep = [display_map("smoothgrad", explainer("smoothgrad", x, targets,
                                                 dataclasses.replace(options, sigma=s)))
             for s in sigmas]  # fmt: skip
    rows = [[sweep[j][k] for j in range(len(sigmas))] for k in range(len(picked))]
    path = out / f"{split}_sigma_sweep.png"
    if volumetric:
      viz.plot_sigma_sweep(list(shown), rows, sigmas, path, title="SmoothGrad sigma sweep",
                           row_labels=short)  # fmt: skip
    else:
      viz.plot_saliency_grid(shown[0], {f"sigma={s}": sweep[j][0] for j, s in enumerate(sigmas)},
                             path, title=titles[0])  # fmt: skip
  print(f"wrote figures and maps for {len(picked)} items to {out}")
  return all_maps
