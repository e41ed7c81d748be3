"""Localisation metrics (does the map point at the object?) and the shortcut share.

maps and masks are `[B, *spatial]`; every score is per sample `[B]`, nan where undefined
(an empty mask, a map without relevance).

Conventions of every metric (here and in `faithfulness`):
- maps are `[B, *spatial]` (2D `[B, H, W]` or 3D `[B, D, H, W]`); a map with a channel axis is
  reduced by the caller first (e.g. `jnp.abs(m).sum(-1)`), masks are `[B, *spatial]` bool/0-1;
- every score is per sample, `[B]` floats; undefined scores are nan, so aggregate with
  `jnp.nanmean` or `per_class_mean` (which skips nan);
- everything is `jax.jit`-compiled (or jittable when a model function is passed);
- ties: `voxel_ranks` (the deletion/insertion order) breaks ties by a seeded random
  permutation per sample, not by flat index (which would favour the first slices);
  `relevance_rank_accuracy` gives tied voxels averaged credit; `pointing_game` takes `ties=`.

Bad arguments (shapes, option names) raise ValueError: this package imports only jax and numpy.
"""

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from bugnist_jax.saliency._maps import Array, _check_same, _flat, _safe_div


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

  With K = number of mask voxels of a sample, the K highest-ranked voxels are taken and the
  share inside the mask returned. Voxels tied at the K-th value get averaged credit: of the
  `n` voxels tied there, the `k` still needed count `k / n` each, the expected score over
  every order of the ties (Quantus's `np.argsort` picks an arbitrary order; a constant map
  scores the mask's volume fraction here). maps, masks `[B, *spatial]` -> `[B]`; nan for an
  empty mask.
  """
  _check_same(maps, masks, "masks")
  m = _flat(masks).astype(bool)
  k = jnp.sum(m, axis=1)
  inside = _top_inside(_flat(jnp.abs(maps) if use_abs else maps), m, k)
  return _safe_div(inside, k.astype(jnp.float32))


def _top_inside(v: Array, m: Array, k: Array) -> Array:
  """Expected number of the top-`k[b]` voxels of `v [B, n]` inside `m [B, n]`, over every
  order of the voxels tied at the k-th value (each of the n tied counts `still / n`)."""
  v = v.astype(jnp.float32)
  ordered = -jnp.sort(-v, axis=1)
  kth = jnp.take_along_axis(ordered, jnp.maximum(k - 1, 0)[:, None], axis=1)  # [B, 1]
  above, tied = v > kth, v == kth
  still = (k - jnp.sum(above, 1)).astype(jnp.float32)  # tied voxels taken, >= 1 when k > 0
  share = still / jnp.maximum(jnp.sum(tied, 1), 1)
  return jnp.sum(above & m, 1) + share * jnp.sum(tied & m, 1)


@partial(jax.jit, static_argnames=("k", "use_abs", "concept_influence"))
def top_k_intersection(
  maps: Array,
  masks: Array,
  *,
  k: int = 1000,
  use_abs: bool = False,
  concept_influence: bool = False,
) -> Array:
  """Share of the `k` highest-attributed voxels inside the mask (Theiner et al. 2021, Quantus's
  TopKIntersection, default k=1000); ties at the k-th value get averaged credit (as
  `relevance_rank_accuracy`). `concept_influence` divides by the mask's volume fraction.
  maps, masks `[B, *spatial]` -> `[B]`; nan for an empty mask.
  """
  _check_same(maps, masks, "masks")
  n = maps[0].size
  if not isinstance(k, int) or not 1 <= k <= n:
    raise ValueError(f"k: expected 1..{n} (the voxels of a map), got {k!r}")
  m = _flat(masks).astype(bool)
  inside = _top_inside(_flat(jnp.abs(maps) if use_abs else maps), m, jnp.full(m.shape[:1], k))
  share = inside / k
  if concept_influence:
    share = share * n / jnp.maximum(jnp.sum(m, 1), 1)
  return jnp.where(jnp.any(m, 1), share, jnp.nan)


POINTING_TIES = ("any", "all")


def _within(masks: Array, tolerance: float, spacing: tuple[float, ...]) -> Array:
  """Voxels within Euclidean distance `tolerance` of a mask voxel (distances scaled per axis
  by `spacing`): `[B, *spatial]` bool. Exact squared distances, one axis at a time (squared
  Euclidean distance separates over axes), over offsets up to the tolerance only."""
  d2 = jnp.where(masks, 0.0, jnp.inf).astype(jnp.float32)
  for ax, step in enumerate(spacing, start=1):
    reach, n = int(tolerance / step), d2.shape[ax]
    best = d2
    for k in range(1, min(reach, n - 1) + 1):
      pad = [(0, 0)] * d2.ndim
      for lo_hi, start in (((k, 0), 0), ((0, k), k)):
        pad[ax] = lo_hi
        moved = jax.lax.slice_in_dim(
          jnp.pad(d2, pad, constant_values=jnp.inf), start, start + n, axis=ax
        )
        best = jnp.minimum(best, moved + (k * step) ** 2)
    d2 = best
  return d2 <= tolerance**2


@partial(jax.jit, static_argnames=("tolerance", "spacing", "ties"))
def pointing_game(
  maps: Array,
  masks: Array,
  *,
  tolerance: float = 0.0,
  spacing: tuple[float, ...] | None = None,
  ties: str = "any",
) -> Array:
  """1.0 where the map's maximum lies inside the mask, else 0.0 (Zhang et al. 2018).

  `tolerance` accepts a peak within that Euclidean distance of the mask (the paper's 15 px, as
  TorchRay's disc; a cube would hold about 1.9x the voxels of the ball in 3D), in voxels, or in
  physical units with a voxel `spacing` (one size per spatial axis, e.g. µm); 0, the Quantus
  default, is the mask itself. Ties: with `ties='any'` (Quantus) a hit is any maximal voxel
  inside, so a constant map (a dead gradient, an all-zero ReLU-ed CAM) scores 1 on a non-empty
  mask; `'all'` needs every maximal voxel inside (a constant map then scores 0 unless the mask
  covers the whole volume). maps, masks `[B, *spatial]` -> `[B]`; nan for an empty mask.
  """
  _check_same(maps, masks, "masks")
  n_spatial = maps.ndim - 1
  spacing = (1.0,) * n_spatial if spacing is None else tuple(float(s) for s in spacing)
  if len(spacing) != n_spatial or min(spacing) <= 0:
    raise ValueError(f"spacing: expected {n_spatial} positive sizes, got {spacing!r}")
  if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or tolerance < 0:
    raise ValueError(f"tolerance: expected a non-negative number, got {tolerance!r}")
  if ties not in POINTING_TIES:
    raise ValueError(f"ties: expected one of {POINTING_TIES}, got {ties!r}")
  m = masks.astype(bool)
  grown = _flat(_within(m, float(tolerance), spacing) if tolerance > 0 else m)
  a = _flat(maps)
  peaks = a == jnp.max(a, axis=1, keepdims=True)
  hit = jnp.any(peaks & grown, 1) if ties == "any" else ~jnp.any(peaks & ~grown, 1)
  return jnp.where(jnp.any(_flat(m), 1), hit.astype(jnp.float32), jnp.nan)


@partial(jax.jit, static_argnames=("threshold",))
def mask_iou(maps: Array, masks: Array, *, threshold: float = 0.5) -> Array:
  """IoU of the map's region at `threshold` of its maximum with the mask (the CAM papers'
  localisation at 15-20 %; 50 % is stricter): the positive part `r = max(map, 0)` is
  binarised at `r >= threshold * max(r)`. nan for an empty mask or a map without relevance."""
  _check_same(maps, masks, "masks")
  r, m = jnp.maximum(_flat(maps), 0.0), _flat(masks) > 0
  top = jnp.max(r, axis=1, keepdims=True)
  region = (r >= threshold * top) & (top > 0)
  inter = jnp.sum(region & m, axis=1).astype(jnp.float32)
  union = jnp.sum(region | m, axis=1).astype(jnp.float32)
  valid = (top[:, 0] > 0) & jnp.any(m, axis=1)
  return jnp.where(valid, inter / jnp.maximum(union, 1.0), jnp.nan)


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
