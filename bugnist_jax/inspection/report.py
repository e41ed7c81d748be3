"""The figures of `python -m bugnist_jax.look_inside` (see there), as a library function."""

import pathlib

import jax.numpy as jnp
import numpy as np

from bugnist_jax import saliency, viz
from bugnist_jax.errors import UserError
from bugnist_jax.inspection.features import conv_layers, save_feature_maps
from bugnist_jax.inspection.patches import top_patches
from bugnist_jax.models.adapters import as_function, split_at
from bugnist_jax.training.experiment import open_run


def _first_of_each_class(labels: np.ndarray, num_classes: int) -> list[int]:
  return [int(np.flatnonzero(labels == c)[0]) for c in range(num_classes) if np.any(labels == c)]


def look_inside(workdir, layer=None, channel=0, top_k=6, split="validation", step=None,
                data_root=None) -> list[pathlib.Path]:  # fmt: skip
  """Writes the figures listed in `bugnist_jax.look_inside` to workdir/inside/; returns paths."""
  run = open_run(workdir, step, data_root)
  info, model, step, workdir = run.info, run.model, run.step, run.workdir
  source, norm, names = run.split(split), info.normalization, info.class_names
  convs = conv_layers(model)
  layer = layer or convs[-1]
  if layer not in model.layer_names:
    raise UserError(f"--layer: unknown {layer!r}; valid: {', '.join(model.layer_names)}")
  out = workdir / "inside"
  labels = source.labels()
  examples = _first_of_each_class(labels, len(names))
  first = source[examples[0]]
  x = norm(first["image"][None])
  paths = save_feature_maps(
    model, x, out / "features", title=f"{names[int(first['label'])]} (step {step}) "
  )  # fmt: skip

  try:
    patches, captions, _ = top_patches(model, source, norm, layer, channel, top_k)
  except (ValueError, IndexError) as e:
    raise UserError(f"--layer/--channel: {e}") from None
  path = out / f"top_{layer}_c{channel}.png"
  viz.plot_patch_grid([patches], path, [captions], title=f"top {len(patches)} {split} patches "
                      f"for {layer} channel {channel}")  # fmt: skip
  paths.append(path)

  scan_rows, caption_rows = [], []
  for c in range(len(names)):
    p, cap, _ = top_patches(model, source, norm, "logits", c, top_k,
                                       among=np.flatnonzero(labels == c))  # fmt: skip
    scan_rows.append(p)
    caption_rows.append(cap)
  path = out / "top_patches_per_class.png"
  viz.plot_patch_grid(scan_rows, path, caption_rows, row_labels=list(names),
                      title=f"{split}: patches that drive each class logit most")  # fmt: skip
  paths.append(path)

  if len(info.image_shape) == 3:  # 2D images [H, W, C]: saliency figures
    f = as_function(model)
    features, head = split_at(model, convs[-1])
    images = np.stack([source[i]["image"] for i in examples])
    xs = norm(images)
    targets = jnp.asarray(labels[examples], jnp.int32)
    gbp = saliency.guided_backprop(f, xs, targets)
    # |guided backprop| summed over RGB, clipped at its 99th percentile: signed channel sums
    # cancel and a few extreme pixels would otherwise wash the rest of the map out.
    gbp = np.asarray(saliency.to_heatmap(gbp, sign="absolute", upper=99.0))
    cam = np.asarray(saliency.grad_cam(features, head, xs, targets))
    for b, i in enumerate(examples):
      path = out / f"saliency_{names[int(labels[i])]}.png"
      maps = {"guided backprop": gbp[b], f"Grad-CAM ({convs[-1]})": cam[b]}
      viz.plot_saliency_grid(images[b], maps, path, title=f"{names[int(labels[i])]} (item {i})")
      paths.append(path)
  return paths
