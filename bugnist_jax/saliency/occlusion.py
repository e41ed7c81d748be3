"""Occlusion (Zeiler & Fergus 2014) with an N-d sliding window over the spatial dims."""

from functools import partial, reduce

import jax
import jax.numpy as jnp
import numpy as np

from bugnist_jax.saliency._common import (
  Array,
  Model,
  check_input,
  check_positive,
  chunked_sum,
  pick,
  resolve_targets,
  with_targets,
)


def _per_dim(value: int | tuple[int, ...], ndim: int, name: str) -> tuple[int, ...]:
  """An int or a sequence of `ndim` positive ints -> a tuple of `ndim` ints."""
  values = (value,) * ndim if isinstance(value, int) else tuple(value)
  if len(values) != ndim:
    raise ValueError(f"{name}: expected {ndim} sizes (one per spatial dim), got {value!r}")
  for v in values:
    check_positive(v, name)
  return values


def window_starts(size: int, window: int, stride: int) -> np.ndarray:
  """Window origins along one dim, as Captum: `0, s, 2s, ...` until the end is covered.

  The last window may run past the edge (it is clipped), so every voxel is covered.
  """
  return np.arange(-(-(size - window) // stride) + 1) * stride


@partial(jax.jit, static_argnums=0, static_argnames=("window", "stride", "batch_size"))
def _occlusion(f, x, targets, baseline, *, window, stride, batch_size):
  spatial = x.shape[1:-1]
  logits = f(x)
  targets = resolve_targets(logits, targets)
  clean = pick(logits, targets)
  baseline = jnp.broadcast_to(jnp.asarray(baseline, x.dtype), x.shape)
  grids = np.meshgrid(*map(window_starts, spatial, window, stride), indexing="ij")
  origins = jnp.asarray(np.stack([g.ravel() for g in grids], axis=-1))  # [P, ndim]

  def one_window(origin):
    inside = [
      ((i >= o) & (i < o + w)).reshape([-1 if d == a else 1 for d in range(len(spatial))])
      for a, (i, o, w) in enumerate(zip(map(jnp.arange, spatial), origin, window, strict=True))
    ]
    mask = reduce(jnp.logical_and, inside)  # [*spatial]
    occluded = jnp.where(mask[None, ..., None], baseline, x)
    drop = clean - pick(f(occluded), targets)  # [B]
    weight = mask.astype(x.dtype)
    return drop.reshape(-1, *(1,) * len(spatial)) * weight, weight

  total, count = chunked_sum(one_window, origins, batch_size, x)
  return jnp.broadcast_to((total / count)[..., None], x.shape)


@with_targets(1)
def occlusion(
  f: Model,
  x: Array,
  targets: Array | None = None,
  *,
  window: int | tuple[int, ...],
  stride: int | tuple[int, ...],
  baseline: Array | float = 0.0,
  batch_size: int | None = None,
) -> Array:
  """Occlusion: `[B, *spatial, C]` -> the same shape (equal over C).

  A window (all channels) slides over the spatial dims; each voxel gets the drop of the target
  logit, `logits(x)[b, t] - logits(x occluded)[b, t]`, averaged over the windows covering it
  (as Captum's Occlusion with a window spanning the channels).

  Args:
    f: the model, `f(x) -> logits [B, K]`.
    x: inputs `[B, *spatial, C]`.
    targets: int `[B]`, or None for each sample's predicted class.
    window: window size per spatial dim (an int for all).
    stride: step per spatial dim (an int for all); at most the window along every dim the
      window does not span whole (ValueError otherwise, as Captum).
    baseline: value put in the window, broadcastable to `x`.
    batch_size: window positions run at once; None runs all at once.
  """
  check_input(x)
  ndim = x.ndim - 2
  window, stride = _per_dim(window, ndim, "window"), _per_dim(stride, ndim, "stride")
  check_positive(batch_size, "batch_size", allow_none=True)
  spatial = x.shape[1:-1]
  if any(w > n for w, n in zip(window, spatial, strict=True)):
    raise ValueError(f"window: {window} is larger than the input's spatial shape")
  # As Captum: a stride past the window leaves voxels that no window covers (their average
  # would be 0/0), except along a dim that one window spans whole.
  if any(s > w and w < n for w, s, n in zip(window, stride, spatial, strict=True)):
    raise ValueError(
      f"stride: {stride} is larger than the window {window} along a dim the window does not "
      "span: some voxels would be in no occlusion window"
    )
  return _occlusion(f, x, targets, baseline, window=window, stride=stride, batch_size=batch_size)
