"""Maximally activating patches: scan a data source, keep the top-k items, crop their fields.

For a neuron of a spatial stage (a conv or pool channel) an item's score is the channel's
maximum over positions, and the patch is the receptive field of that position. For a neuron of
a dense stage or a logit (e.g. a class), whose field is the whole input, the patch is, as in the
study, the region that contributes most: the receptive field of the last conv stage's position
where Grad-CAM for that neuron peaks (Grad-CAM at the last conv stage, not upsampled). One patch
per item: the top k are k different items. Items pass through `transforms` (the run's record
transforms) first, so scores and patches are of what the model saw.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from bugnist_jax import compile, saliency
from bugnist_jax.data import datasets, pipeline
from bugnist_jax.inspection.receptive_field import Field, receptive_fields
from bugnist_jax.models.adapters import stage_fn
from bugnist_jax.models.staged import StagedModel


@dataclasses.dataclass(frozen=True)
class Scan:
  """Per-item scores of one neuron over a source, and where its patch lies."""

  values: np.ndarray  # [N] float: the neuron's activation (max over positions)
  positions: np.ndarray  # [N, ndim] int: position in `field_layer`'s map
  labels: np.ndarray  # [N] int
  field_layer: str  # the stage whose receptive field gives the patch
  field: Field

  def top(self, k: int, among: np.ndarray | None = None) -> np.ndarray:
    """Indices (into the source) of the k highest values, optionally among a subset."""
    idx = np.arange(len(self.values)) if among is None else np.asarray(among)
    return idx[np.argsort(-self.values[idx], kind="stable")[:k]]

  def box(self, i: int, input_shape) -> tuple[slice, ...]:
    return self.field.box(self.positions[i], input_shape)


def _scorer(model: StagedModel, normalize, layer: str, channel: int, field_layer: str):
  """Jitted uint8 batch [B, *S, C] -> (values [B], flat positions [B]) for one neuron."""
  spatial = layer == field_layer
  if spatial:
    f = stage_fn(model, None, layer)

    def score(images):
      a = f(normalize(images))[..., channel]
      flat = a.reshape(a.shape[0], -1)
      return flat.max(-1), flat.argmax(-1)

  else:
    features = stage_fn(model, None, field_layer)
    to_layer = stage_fn(model, field_layer, layer)

    def head(a):
      return to_layer(a).reshape(a.shape[0], -1)

    def score(images):
      x = normalize(images)
      values = head(features(x))[:, channel]
      targets = jnp.full((x.shape[0],), channel, jnp.int32)
      cam = saliency.grad_cam(features, head, x, targets, upsample=False)
      return values, cam.reshape(cam.shape[0], -1).argmax(-1)

  return compile.jit(score)


def _collect(score, source, field: Field, batch_size: int, transforms):
  """Runs the jitted `score(uint8 batch) -> (values [B, ...], flat positions [B, ...])` over
  `source`: (values [N, ...], positions [N, ..., ndim] in `field`'s map, labels [N])."""
  values, positions, labels = [], [], []
  for batch in pipeline.eval_batches(source, batch_size=batch_size, transforms=transforms):
    v, p = jax.device_get(score(batch["image"]))
    keep = batch["valid"]
    values.append(v[keep])
    positions.append(np.stack(np.unravel_index(p[keep], field.shape), axis=-1))
    labels.append(batch["label"][keep])
  return np.concatenate(values), np.concatenate(positions), np.concatenate(labels)


def scan_source(
  model: StagedModel,
  source,
  normalize,
  layer: str,
  channel: int,
  batch_size: int = 32,
  transforms=(),
) -> Scan:
  """Scores every item of `source` (records with uint8 `image`) for neuron (`layer`, `channel`).

  A spatial stage with a receptive field is scored by its own maximum; any other stage
  (dense, logits) is located through the last stage with a field (see the module docstring).
  """
  images_shape = source[0]["image"].shape
  fields = receptive_fields(model, images_shape[:-1])
  if layer in fields:
    field_layer = layer
  else:
    model.index(layer)  # ValueError listing the valid layers
    if not fields:
      raise ValueError(f"layer {layer!r}: the model has no spatial stage to locate patches with")
    field_layer = list(fields)[-1]
  field = fields[field_layer]
  score = _scorer(model, normalize, layer, channel, field_layer)
  values, positions, labels = _collect(score, source, field, batch_size, transforms)
  return Scan(values, positions, labels, field_layer, field)


def scan_channels(
  model: StagedModel,
  source,
  normalize,
  layer: str,
  channels,
  batch_size: int = 32,
  transforms=(),
) -> list[Scan]:
  """`scan_source` of several channels of a spatial stage with a receptive field, in one pass
  over the source and one compilation (feature visualisation grids show a patch per channel).
  Returns one Scan per entry of `channels`."""
  fields = receptive_fields(model, source[0]["image"].shape[:-1])
  if layer not in fields:
    model.index(layer)  # ValueError listing the valid layers
    raise ValueError(f"layer {layer!r}: not a spatial stage with a receptive field")
  field, f, index = fields[layer], stage_fn(model, None, layer), jnp.asarray(channels, jnp.int32)

  def score(images):
    a = f(normalize(images))[..., index]
    flat = a.reshape(a.shape[0], -1, a.shape[-1])
    return flat.max(1), flat.argmax(1)  # [B, K] each

  v, p, y = _collect(compile.jit(score), source, field, batch_size, transforms)  # [N, K, ...]
  return [Scan(v[:, k], p[:, k], y, layer, field) for k in range(v.shape[1])]


def crop(image: np.ndarray, box: tuple[slice, ...]) -> np.ndarray:
  """The patch of `image` [*S, C] inside `box`; 3D patches become their max projection over D
  ([h, w, C]), so 2D and 3D patches can share one figure."""
  patch = np.asarray(image)[box]
  return patch.max(axis=0) if patch.ndim == 4 else patch


def item_patch(scan: Scan, source, i: int, transforms=()) -> tuple[np.ndarray, str]:
  """(`crop` of item `i` of `source`, as the model saw it, at its box in `scan`; caption
  '#i value')."""
  image = datasets.apply(list(transforms), source[int(i)])["image"]
  return crop(image, scan.box(int(i), image.shape[:-1])), f"#{i} {scan.values[i]:.3g}"


def top_patches(
  model, source, normalize, layer, channel, k=5, among=None, batch_size=32, transforms=()
):
  """(patches, captions, indices) of the top-k items of `source` for (`layer`, `channel`)."""
  scan = scan_source(model, source, normalize, layer, channel, batch_size, transforms)
  idx = scan.top(k, among)
  found = [item_patch(scan, source, i, transforms) for i in idx]
  return [p for p, _ in found], [c for _, c in found], idx
