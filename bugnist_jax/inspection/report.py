"""The figures of `python -m bugnist_jax.look_inside` (see there), as a library function."""

import dataclasses
import pathlib

import jax.numpy as jnp
import numpy as np

from bugnist_jax import viz
from bugnist_jax.attribution.methods import Explainer, Options, check_methods, display_map
from bugnist_jax.errors import UserError
from bugnist_jax.inspection.features import save_feature_maps
from bugnist_jax.inspection.filters import save_filters
from bugnist_jax.inspection.patches import top_patches
from bugnist_jax.log import say
from bugnist_jax.models.contract import ContractError, check_model
from bugnist_jax.options import option, validate
from bugnist_jax.runs import Run


@dataclasses.dataclass(frozen=True)
class LookInsideRequest:
  """What look_inside shows."""

  layer: str | None = option(None, "Stage for the top patches (default: the model's cam_layer).")
  channel: int = option(0, "Channel (or logit / class index) of --layer.", min=0)
  top_k: int = option(6, "Patches per row.", min=1)
  split: str = option("validation", "Split to scan: train, validation, test.")
  method: tuple[str, ...] = option(
    ("guided_backprop", "grad_cam"), "Saliency methods shown for one item of each class."
  )
  step: int | None = option(None, "Checkpoint step (default: best by validation).", min=0)
  data_root: str | None = option(None, "Data folder, if it moved since training.")


def _first_of_each_class(labels: np.ndarray, num_classes: int) -> list[int]:
  return [int(np.flatnonzero(labels == c)[0]) for c in range(num_classes) if np.any(labels == c)]


def look_inside(workdir, request: LookInsideRequest | None = None) -> list[pathlib.Path]:
  """Writes the figures listed in `bugnist_jax.look_inside` to workdir/inside/; returns paths."""
  request = validate(request or LookInsideRequest())
  methods = check_methods(request.method)
  run = Run.open(workdir, request.step, request.data_root)
  model, names, norm = run.model, run.class_names, run.normalization
  try:
    check_model(model)
  except ContractError as e:
    raise UserError(f"{workdir}: the model breaks the stage contract ({e})") from None
  layer = request.layer or model.cam_layer()
  if layer not in model.layer_names:
    raise UserError(f"--layer: unknown {layer!r}; valid: {', '.join(model.layer_names)}")
  source, transforms = run.split(request.split), run.transforms
  out = run.workdir / "inside"
  labels = source.labels()
  examples = _first_of_each_class(labels, len(names))
  items = run.records(request.split, examples)
  x = norm(items["image"])
  title = f"{names[int(items['label'][0])]} (step {run.step}) "
  paths = save_feature_maps(model, x[:1], out / "features", title=title)
  paths += save_filters(model, out / "filters", title=f"step {run.step}: ")

  scan = dict(transforms=transforms, k=request.top_k)
  try:
    patches, captions, _ = top_patches(model, source, norm, layer, request.channel, **scan)
  except (ValueError, IndexError) as e:
    raise UserError(f"--layer/--channel: {e}") from None
  path = out / f"top_{layer}_c{request.channel}.png"
  viz.plot_patch_grid(
    [patches],
    path,
    [captions],
    title=f"top {len(patches)} {request.split} patches for {layer} channel {request.channel}",
  )
  paths.append(path)

  rows, caption_rows = [], []
  for c in range(len(names)):
    p, cap, _ = top_patches(
      model, source, norm, "logits", c, among=np.flatnonzero(labels == c), **scan
    )
    rows.append(p)
    caption_rows.append(cap)
  path = out / "top_patches_per_class.png"
  viz.plot_patch_grid(
    rows,
    path,
    caption_rows,
    row_labels=list(names),
    title=f"{request.split}: patches that drive each class logit most",
  )
  paths.append(path)

  explainer = Explainer(run.bound(), run.normalization)
  targets = jnp.asarray(items["label"])
  shown = {}
  for m in methods:
    try:
      shown[m] = display_map(m, explainer(m, x, targets, Options()))
    except UserError as e:
      # A default method may not apply to this model (guided backprop has no ReLU to guide in
      # LeNet's tanh): left out with a line. One the user asked for is an error.
      if request.method != LookInsideRequest().method:
        raise
      say(f"look_inside: {e}; left out")
  for b, i in enumerate(examples):
    label = names[int(items["label"][b])]
    image = items["image"][b]
    path = out / f"saliency_{label}.png"
    maps = {(f"{m} ({explainer.bound.layer})" if "cam" in m else m): v[b] for m, v in shown.items()}
    viz.plot_explanation(
      image[..., 0] if image.shape[-1] == 1 else image,
      maps,
      path,
      title=f"{label} (item {i}), for its true class",
    )
    paths.append(path)
  return paths
