"""Attribution-quality metrics: localisation, shortcut share and faithfulness (deletion/insertion).

Conventions shared by every function here:
- maps are `[B, *spatial]` (2D `[B, H, W]` or 3D `[B, D, H, W]`); a map with a channel axis is
  reduced by the caller first (e.g. `jnp.abs(m).sum(-1)`), masks are `[B, *spatial]` bool/0-1;
- inputs `x` of the faithfulness curves are channels-last `[B, *spatial, C]`;
- every score is per sample, `[B]` floats; undefined scores (an empty mask, a map without any
  relevance) are nan, so aggregate with `jnp.nanmean` or `per_class_mean` (which skips nan);
- everything is `jax.jit`-compiled (or jittable when a model function is passed);
- ties in any ordering of voxels are broken by flat (C-order) index, lower index first.

Bad arguments (shapes, option names) raise ValueError: this package imports only jax and numpy.
"""

import math
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array
Model = Callable[[Array], Array]

_BASELINES = ("zero", "mean", "blur", "road")


# ---------------------------------------------------------------------------------------------
# helpers


def _check_maps(maps: Array, name: str = "maps") -> None:
  if maps.ndim < 2:
    raise ValueError(f"{name}: expected a batch of maps [B, *spatial], got shape {maps.shape}")


def _check_same(maps: Array, mask: Array, name: str) -> None:
  _check_maps(maps)
  if mask.shape != maps.shape:
    raise ValueError(f"{name}: expected shape {maps.shape} (the maps' shape), got {mask.shape}")


def _flat(a: Array) -> Array:
  return a.reshape(a.shape[0], -1)


def _safe_div(num: Array, den: Array) -> Array:
  """num / den, nan where den == 0 (an undefined share)."""
  return jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0), jnp.nan)


def voxel_ranks(maps: Array, descending: bool = True) -> Array:
  """Position of every voxel when sorted by attribution: `[B, *spatial]` int32, 0 = first.

  `descending=True` puts the most relevant voxel first. Ties keep flat index order (stable
  sort), so the ordering is deterministic.
  """
  flat = _flat(maps)
  order = jnp.argsort(-flat if descending else flat, axis=1, stable=True)
  n = flat.shape[1]
  ranks = jnp.zeros_like(order).at[jnp.arange(flat.shape[0])[:, None], order].set(jnp.arange(n))
  return ranks.reshape(maps.shape).astype(jnp.int32)


@partial(jax.jit, static_argnames=("sigma", "axes", "truncate"))
def gaussian_filter(x: Array, sigma: float, axes: tuple[int, ...], truncate: float = 3.5) -> Array:
  """Separable N-d gaussian blur of `x` along `axes`, symmetric padding (scipy's 'reflect').

  The 1-D kernel has radius `int(truncate * sigma + 0.5)` (as skimage's SSIM window).
  """
  radius = int(truncate * sigma + 0.5)
  if sigma <= 0 or radius == 0:
    return x
  t = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
  w = jnp.exp(-0.5 * (t / sigma) ** 2)
  w = (w / w.sum())[None, None, :]
  x = x.astype(jnp.float32)
  for ax in axes:
    pad = [(0, 0)] * x.ndim
    pad[ax] = (radius, radius)
    xp = jnp.moveaxis(jnp.pad(x, pad, mode="symmetric"), ax, -1)
    # One 1-D convolution over every line along `ax` (the kernel is symmetric).
    y = jax.lax.conv_general_dilated(xp.reshape(-1, 1, xp.shape[-1]), w, (1,), "VALID")
    x = jnp.moveaxis(y.reshape(*xp.shape[:-1], -1), -1, ax)
  return x


# ---------------------------------------------------------------------------------------------
# localisation


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


# ---------------------------------------------------------------------------------------------
# shortcut learning


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


# ---------------------------------------------------------------------------------------------
# faithfulness: ROAD imputation, deletion and insertion curves


def _shift(a: Array, ax: int, shift: int) -> Array:
  """`a` moved one voxel along `ax` (+1 or -1), zero filled."""
  n = a.shape[ax]
  pad = [(0, 0)] * a.ndim
  pad[ax] = (1, 0) if shift == 1 else (0, 1)
  start = 0 if shift == 1 else 1
  return jax.lax.slice_in_dim(jnp.pad(a, pad), start, start + n, axis=ax)


def _neighbour_sum(y: Array, n_spatial: int) -> Array:
  """Sum of the 2N in-bounds face neighbours of every voxel of `y [B, *spatial, ...]`."""
  return sum(_shift(y, ax, s) for ax in range(1, 1 + n_spatial) for s in (1, -1))


def _linear_impute(x: Array, rm: Array, num_iters: int) -> Array:
  """Noise-free part of `road_impute`; `x [B, *spatial, C]` float, `rm [B, *spatial, 1]` bool."""
  axes = tuple(range(1, x.ndim - 1))
  kept = jnp.sum(~rm, axis=axes, keepdims=True)
  mean = jnp.where(
    kept > 0,
    jnp.sum(jnp.where(rm, 0.0, x), axis=axes, keepdims=True) / jnp.maximum(kept, 1),
    jnp.mean(x, axis=axes, keepdims=True),
  )
  # In-bounds neighbour counts, so border voxels average the neighbours they have.
  count = _neighbour_sum(jnp.ones(rm.shape, jnp.float32), len(axes))
  y = jnp.where(rm, mean, x)
  return jax.lax.fori_loop(
    0, num_iters, lambda _, y: jnp.where(rm, _neighbour_sum(y, len(axes)) / count, x), y
  )


def road_impute(
  x: Array,
  removed: Array,
  *,
  key: Array | None = None,
  num_iters: int = 50,
  noise: float = 0.01,
) -> Array:
  """Noisy linear imputation of removed voxels (ROAD, Rong et al. 2022), N-d.

  ROAD solves a sparse linear system in which every removed voxel equals the weighted mean of
  its neighbours. Here that system (face neighbours, equal weights) is approximated by
  `num_iters` Jacobi sweeps of neighbour averaging over the removed set, started from the
  sample's per-channel mean of the kept voxels (its whole mean when nothing is kept); small
  holes converge in a few sweeps, large ones stay smoother than the exact solution. Gaussian
  noise of std `noise` is then added to the removed voxels only, as in ROAD, so the imputed
  values carry no exploitable pattern.
  x `[B, *spatial, C]`, removed `[B, *spatial]` bool -> `[B, *spatial, C]`; kept voxels are
  returned unchanged. `key` defaults to `jax.random.key(0)`.
  """
  _check_maps(removed, "removed")
  if x.shape[:-1] != removed.shape:
    raise ValueError(
      f"removed: expected shape {x.shape[:-1]} (x without channels), got {removed.shape}"
    )
  key = jax.random.key(0) if key is None else key  # outside jit: no retrace for None vs key
  return _road_impute(x, removed, key, num_iters, noise)


@partial(jax.jit, static_argnums=(3,))
def _road_impute(x: Array, removed: Array, key: Array, num_iters: int, noise: float) -> Array:
  x = x.astype(jnp.float32)
  rm = removed.astype(bool)[..., None]
  y = _linear_impute(x, rm, num_iters) + noise * jax.random.normal(key, x.shape)
  return jnp.where(rm, y, x)


def _curve(
  f: Model,
  x: Array,
  maps: Array,
  targets: Array | None,
  *,
  insert: bool,
  num_steps: int,
  baseline: str,
  batch_size: int | None,
  order: str,
  score: str,
  blur_sigma: float,
  key: Array | None,
  road_iters: int,
  road_noise: float,
) -> tuple[Array, Array]:
  """Deletion (`insert=False`) or insertion curve; see `deletion_curve`."""
  if x.ndim < 3 or x.shape[:-1] != maps.shape:
    raise ValueError(
      f"maps: expected shape {x.shape[:-1]} (x [B, *spatial, C] without C), got {maps.shape}"
    )
  if baseline not in _BASELINES:
    raise ValueError(f"baseline: expected one of {_BASELINES}, got {baseline!r}")
  if order not in ("most", "least"):
    raise ValueError(f"order: expected 'most' or 'least', got {order!r}")
  if score not in ("prob", "logit"):
    raise ValueError(f"score: expected 'prob' or 'logit', got {score!r}")
  if not isinstance(num_steps, int) or num_steps < 1:
    raise ValueError(f"num_steps: expected a positive int, got {num_steps!r}")
  if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
    raise ValueError(f"batch_size: expected a positive int or None, got {batch_size!r}")

  x = x.astype(jnp.float32)
  b = x.shape[0]
  axes = tuple(range(1, x.ndim - 1))
  if targets is None:
    targets = jnp.argmax(f(x), axis=-1)
  targets = jnp.asarray(targets, jnp.int32)
  if targets.shape != (b,):
    raise ValueError(f"targets: expected shape ({b},), got {targets.shape}")

  ranks = voxel_ranks(maps, descending=order == "most")
  n_vox = math.prod(maps.shape[1:])
  if baseline == "zero":
    base = jnp.zeros_like(x)
  elif baseline == "mean":
    base = jnp.broadcast_to(jnp.mean(x, axis=axes, keepdims=True), x.shape)
  elif baseline == "blur":
    base = gaussian_filter(x, blur_sigma, axes)
  else:
    # One noise field for all steps: a removed voxel keeps its noise as more voxels go, and
    # the (slow to compile) random generator runs once, outside the vmap over steps.
    key = jax.random.key(0) if key is None else key
    noise = road_noise * jax.random.normal(key, x.shape)

  def perturbed(step: Array) -> Array:
    """The input after `step` of `num_steps` steps: `[B, *spatial, C]`."""
    # Integer arithmetic so the last step covers exactly every voxel.
    changed = (ranks < (step * n_vox) // num_steps)[..., None]
    # Deletion replaces the changed voxels; insertion shows them on top of the baseline.
    hidden = ~changed if insert else changed
    if baseline == "road":
      return jnp.where(hidden, _linear_impute(x, hidden, road_iters) + noise, x)
    return jnp.where(hidden, base, x)

  def scores(steps: Array) -> Array:
    """Target scores for a chunk of steps `[c]` -> `[c, B]`, one model call."""
    xs = jax.vmap(perturbed)(steps)
    logits = f(xs.reshape(-1, *x.shape[1:])).reshape(steps.shape[0], b, -1)
    if score == "prob":
      logits = jax.nn.softmax(logits, axis=-1)
    return jnp.take_along_axis(logits, targets[None, :, None], axis=2)[..., 0]

  n = num_steps + 1
  size = n if batch_size is None else min(batch_size, n)
  chunks = -(-n // size)
  # Padding repeats the last step; its extra scores are dropped below.
  steps = jnp.minimum(jnp.arange(chunks * size), num_steps).reshape(chunks, size)
  curve = jax.lax.map(scores, steps).reshape(chunks * size, b)[:n].T
  auc = (jnp.sum(curve, 1) - 0.5 * (curve[:, 0] + curve[:, -1])) / num_steps
  return curve, auc


_STATIC = (
  "f",
  "num_steps",
  "baseline",
  "batch_size",
  "order",
  "score",
  "blur_sigma",
  "road_iters",
  "road_noise",
)


@partial(jax.jit, static_argnames=_STATIC)
def deletion_curve(
  f: Model,
  x: Array,
  maps: Array,
  targets: Array | None = None,
  *,
  num_steps: int = 20,
  baseline: str = "zero",
  batch_size: int | None = None,
  order: str = "most",
  score: str = "prob",
  blur_sigma: float = 5.0,
  key: Array | None = None,
  road_iters: int = 50,
  road_noise: float = 0.01,
) -> tuple[Array, Array]:
  """Deletion curve and its area (Petsiuk et al. 2018, RISE); ROAD's MoRF/LeRF with 'road'.

  Voxels are removed in order of decreasing attribution (`order='most'`, MoRF; `'least'`
  removes the least relevant first, LeRF) in `num_steps` equal steps; removed voxels (all
  channels) take the baseline value: 'zero', the sample's per-channel 'mean', a gaussian
  'blur' of x (`blur_sigma` voxels), or 'road' noisy linear imputation (`road_impute`, with
  `key`, `road_iters`, `road_noise`; one noise field shared by all steps). The curve is the
  target class's softmax probability (`score='prob'`) or logit (`'logit'`) after
  0..num_steps steps; the area uses the trapezoid rule on an x axis scaled to [0, 1]. A
  faithful map makes the MoRF deletion area small.

  All steps are evaluated batched: chunks of `batch_size` steps (None: all at once) are
  stacked into one call of `f` on `[chunk * B, *spatial, C]`, chunks run one after another
  (`lax.map`), so memory grows with `batch_size * B`.

  Args:
    f: `f(x) -> logits [B, K]`, pure (eval mode); a static argument, so reuse one function
      object to avoid recompiles.
    x: inputs `[B, *spatial, C]`.
    maps: attributions `[B, *spatial]`.
    targets: int classes `[B]`; None uses `argmax f(x)`.

  Returns:
    `(curve [B, num_steps + 1], auc [B])`.
  """
  return _curve(
    f, x, maps, targets, insert=False, num_steps=num_steps, baseline=baseline,
    batch_size=batch_size, order=order, score=score, blur_sigma=blur_sigma, key=key,
    road_iters=road_iters, road_noise=road_noise,
  )  # fmt: skip


@partial(jax.jit, static_argnames=_STATIC)
def insertion_curve(
  f: Model,
  x: Array,
  maps: Array,
  targets: Array | None = None,
  *,
  num_steps: int = 20,
  baseline: str = "blur",
  batch_size: int | None = None,
  order: str = "most",
  score: str = "prob",
  blur_sigma: float = 5.0,
  key: Array | None = None,
  road_iters: int = 50,
  road_noise: float = 0.01,
) -> tuple[Array, Array]:
  """Insertion curve and its area (Petsiuk et al. 2018, RISE).

  Starts from the baseline (default a gaussian blur of x, as RISE) and reveals the true
  voxels in order of decreasing attribution (`order='most'`) in `num_steps` equal steps; with
  'road' the hidden voxels are imputed from the revealed ones. Arguments and returns as
  `deletion_curve`; a faithful map makes the insertion area large.
  """
  return _curve(
    f, x, maps, targets, insert=True, num_steps=num_steps, baseline=baseline,
    batch_size=batch_size, order=order, score=score, blur_sigma=blur_sigma, key=key,
    road_iters=road_iters, road_noise=road_noise,
  )  # fmt: skip
