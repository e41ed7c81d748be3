"""Localisation metrics (does the map point at the object?) and the shortcut share.

maps and masks are `[B, *spatial]`; every score is per sample `[B]`, nan where undefined
(an empty mask, a map without relevance).

Conventions of every metric (here and in `faithfulness`):
- maps are `[B, *spatial]` (2D `[B, H, W]` or 3D `[B, D, H, W]`); a map with a channel axis is
  reduced by the caller first (e.g. `jnp.abs(m).sum(-1)`), masks are `[B, *spatial]` bool/0-1;
- every score is per sample, `[B]` floats; undefined scores are nan, so aggregate with
  `jnp.nanmean` or `per_class_mean` (which skips nan);
- everything is `jax.jit`-compiled (or jittable when a model function is passed);
- ties in any ordering of voxels are broken by flat (C-order) index, lower index first.

Bad arguments (shapes, option names) raise ValueError: this package imports only jax and numpy.
"""

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from bugnist_jax.saliency._maps import Array, _check_same, _flat, _safe_div, voxel_ranks


@partial(jax.jit, static_argnames=("use_abs",))
def relevance_mass_accuracy(maps: Array, masks: Array, *, use_abs: bool = False) -> Array:
  """Share of the positive relevance that lies inside the mask (Arras et al., Quantus).

  `sum(r * mask) / sum(r)` with `r = max(map, 0)` (or `|map|` with `use_abs`): negative
  evidence is dropped, the raw scale is kept. maps, masks `[B, *spatial]` -> `[B]`; nan where
  the map has no positive relevance. A uniform map scores the mask's volume fraction.
  """
  _check_same(maps, masks, "masks")
  r = _flat(jnp.abs(maps) if use_abs else jnp.maximum(maps, 0.0)).astype(jnp.float32)
  m = _flat(masks).astype(bool)
  return _safe_div(jnp.sum(jnp.where(m, r, 0.0), 1), jnp.sum(r, 1))


@partial(jax.jit, static_argnames=("use_abs",))
def relevance_rank_accuracy(maps: Array, masks: Array, *, use_abs: bool = False) -> Array:
  """Fraction of the top-`|mask|` voxels (by attribution) that lie inside the mask (Quantus).

  With K = number of mask voxels of a sample, the K highest-ranked voxels are taken (ties by
  flat index) and the share inside the mask returned. maps, masks `[B, *spatial]` -> `[B]`;
  nan for an empty mask.
  """
  _check_same(maps, masks, "masks")
  m = _flat(masks).astype(bool)
  k = jnp.sum(m, axis=1)
  top = _flat(voxel_ranks(jnp.abs(maps) if use_abs else maps)) < k[:, None]
  return _safe_div(jnp.sum(top & m, 1).astype(jnp.float32), k.astype(jnp.float32))


def _dilate(masks: Array, radius: int) -> Array:
  """Grows a `[B, *spatial]` mask by `radius` voxels (a cube, i.e. the max-norm ball)."""
  if radius == 0:
    return masks
  window = (1,) + (2 * radius + 1,) * (masks.ndim - 1)
  grown = jax.lax.reduce_window(
    masks.astype(jnp.float32), -jnp.inf, jax.lax.max, window, (1,) * masks.ndim, "SAME"
  )
  return grown > 0


@partial(jax.jit, static_argnames=("tolerance",))
def pointing_game(maps: Array, masks: Array, *, tolerance: int = 0) -> Array:
  """1.0 where the map's maximum lies inside the mask, else 0.0 (Zhang et al. 2018).

  The first maximal voxel (flat order) is the peak. `tolerance` grows the mask by that many
  voxels in every direction first (the paper's 15 px); 0, the Quantus default, ignores it.
  maps, masks `[B, *spatial]` -> `[B]`; nan for an empty mask.
  """
  _check_same(maps, masks, "masks")
  if not isinstance(tolerance, int) or tolerance < 0:
    raise ValueError(f"tolerance: expected a non-negative int, got {tolerance!r}")
  m = _flat(_dilate(masks.astype(bool), tolerance))
  hit = jnp.take_along_axis(m, jnp.argmax(_flat(maps), axis=1)[:, None], axis=1)[:, 0]
  return jnp.where(jnp.any(_flat(masks).astype(bool), 1), hit.astype(jnp.float32), jnp.nan)


@jax.jit
def energy_pointing_game(maps: Array, masks: Array) -> Array:
  """Energy-based pointing game (Wang et al. 2020, Score-CAM): map energy inside the mask.

  Each map is min-max normalised to [0, 1] first, then `sum(n * mask) / sum(n)`. Unlike
  `relevance_mass_accuracy` (which clips negatives and keeps the raw scale) the normalisation
  shifts the map so its minimum has zero energy: for non-negative maps whose minimum is 0 (a
  ReLU-ed CAM) both agree; for signed maps negatives count as low, not absent, evidence. A
  constant map is treated as uniform and scores the mask's volume fraction.
  maps, masks `[B, *spatial]` -> `[B]`; nan for an empty mask.
  """
  _check_same(maps, masks, "masks")
  a = _flat(maps).astype(jnp.float32)
  lo, hi = a.min(1, keepdims=True), a.max(1, keepdims=True)
  n = jnp.where(hi > lo, (a - lo) / jnp.where(hi > lo, hi - lo, 1.0), 1.0)
  m = _flat(masks).astype(bool)
  inside = jnp.sum(jnp.where(m, n, 0.0), 1)
  return jnp.where(jnp.any(m, 1), inside / jnp.sum(n, 1), jnp.nan)


class ShortcutScore(NamedTuple):
  """Per-sample shares `[B]` of the attribution on the shortcut and on the object."""

  on_shortcut: Array  # share of all attribution on the shortcut region (e.g. cotton)
  on_object: Array  # share of all attribution on the object (the bug)
  ratio: Array  # on_shortcut / (on_shortcut + on_object): 1 = only shortcut, 0 = only object


@partial(jax.jit, static_argnames=("use_abs",))
def shortcut_score(
  maps: Array, object_mask: Array, shortcut_mask: Array, *, use_abs: bool = True
) -> ShortcutScore:
  """How much attribution falls on a shortcut region compared with the object.

  Attribution is `|map|` (`use_abs=True`) or its positive part. Shares are of the whole map's
  attribution, so background takes the rest; overlapping masks count a voxel for both.
  maps, masks `[B, *spatial]` -> `ShortcutScore` of `[B]` arrays; nan where undefined (no
  attribution at all, or none on either region for the ratio).
  """
  _check_same(maps, object_mask, "object_mask")
  _check_same(maps, shortcut_mask, "shortcut_mask")
  r = _flat(jnp.abs(maps) if use_abs else jnp.maximum(maps, 0.0)).astype(jnp.float32)
  total = jnp.sum(r, 1)
  on_s = _safe_div(jnp.sum(jnp.where(_flat(shortcut_mask).astype(bool), r, 0.0), 1), total)
  on_o = _safe_div(jnp.sum(jnp.where(_flat(object_mask).astype(bool), r, 0.0), 1), total)
  return ShortcutScore(on_s, on_o, _safe_div(on_s, on_s + on_o))


@partial(jax.jit, static_argnames=("num_classes",))
def per_class_mean(values: Array, labels: Array, num_classes: int) -> Array:
  """Mean of `values [B]` per class of `labels [B]` -> `[num_classes]`.

  nan values are skipped; classes without a finite value get nan.
  """
  if values.shape != labels.shape or values.ndim != 1:
    raise ValueError(f"labels: expected shape {values.shape} (one per value), got {labels.shape}")
  ok = jnp.isfinite(values)
  total = jax.ops.segment_sum(jnp.where(ok, values, 0.0), labels, num_segments=num_classes)
  count = jax.ops.segment_sum(ok.astype(jnp.float32), labels, num_segments=num_classes)
  return _safe_div(total, count)
