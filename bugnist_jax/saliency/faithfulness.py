"""Faithfulness: ROAD imputation, deletion and insertion curves (does removing what the map
points at change the prediction?). Conventions as in `localisation`; inputs `x` are
channels-last `[B, *spatial, C]`."""

import math
from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp

from bugnist_jax.saliency._common import check_positive
from bugnist_jax.saliency._maps import Array, _check_maps, gaussian_filter, voxel_ranks

Model = Callable[[Array], Array]
_BASELINES = ("zero", "mean", "blur", "road")


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


SCORES = ("prob", "logit")  # what a perturbation metric reads of the model: softmax or logits


def check_scored(x: Array, maps: Array, score: str, batch_size: int | None) -> None:
  """ValueError unless `maps` is `x [B, *spatial, C]` without C, `score` one of SCORES and
  `batch_size` a positive int or None (the arguments every perturbation metric shares)."""
  if x.ndim < 3 or x.shape[:-1] != maps.shape:
    raise ValueError(
      f"maps: expected shape {x.shape[:-1]} (x [B, *spatial, C] without C), got {maps.shape}"
    )
  if score not in SCORES:
    raise ValueError(f"score: expected one of {SCORES}, got {score!r}")
  check_positive(batch_size, "batch_size", allow_none=True)


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
  baseline_value: Array | None = None,
) -> tuple[Array, Array]:
  """Deletion (`insert=False`) or insertion curve; see `deletion_curve`."""
  check_scored(x, maps, score, batch_size)
  if baseline not in _BASELINES:
    raise ValueError(f"baseline: expected one of {_BASELINES}, got {baseline!r}")
  if order not in ("most", "least"):
    raise ValueError(f"order: expected 'most' or 'least', got {order!r}")
  check_positive(num_steps, "num_steps")

  x = x.astype(jnp.float32)
  b = x.shape[0]
  axes = tuple(range(1, x.ndim - 1))
  if targets is None:
    targets = jnp.argmax(f(x), axis=-1)
  targets = jnp.asarray(targets, jnp.int32)
  if targets.shape != (b,):
    raise ValueError(f"targets: expected shape ({b},), got {targets.shape}")

  # Ties (the many exact zeros of a ReLU-ed map) go in a seeded random order, not low z first.
  tie_key = jax.random.fold_in(jax.random.key(0) if key is None else key, 1)
  ranks = voxel_ranks(maps, descending=order == "most", key=tie_key)
  n_vox = math.prod(maps.shape[1:])
  if baseline_value is not None:
    try:
      base = jnp.broadcast_to(jnp.asarray(baseline_value, jnp.float32), x.shape)
    except ValueError as e:
      raise ValueError(f"baseline_value: shape does not broadcast to {x.shape}") from e
  elif baseline == "zero":
    base = jnp.zeros_like(x)
  elif baseline == "mean":
    base = jnp.broadcast_to(jnp.mean(x, axis=axes, keepdims=True), x.shape)
  elif baseline == "blur":
    base = gaussian_filter(x, blur_sigma, axes)
  elif baseline == "road":
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
    if baseline == "road" and baseline_value is None:
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
  baseline_value: Array | None = None,
) -> tuple[Array, Array]:
  """Deletion curve and its area (Petsiuk et al. 2018, RISE); ROAD's MoRF/LeRF with 'road'.

  Voxels are removed in order of decreasing attribution (`order='most'`, MoRF; `'least'`
  removes the least relevant first, LeRF) in `num_steps` equal steps; removed voxels (all
  channels) take the baseline value: 'zero' (input 0: for standardised inputs the training-mean
  intensity, not black), the sample's per-channel 'mean', a gaussian 'blur' of x (`blur_sigma`
  voxels), or 'road' noisy linear imputation (`road_impute`, with `key`, `road_iters`,
  `road_noise`; one noise field shared by all steps). `baseline_value` (an array broadcastable
  to x, in model-input space) overrides `baseline` (e.g. the input of raw intensity 0). Tied
  attributions are removed in a seeded random order (from `key`), not by voxel position. The
  curve is the target class's softmax probability (`score='prob'`) or logit (`'logit'`) after
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
    f,
    x,
    maps,
    targets,
    insert=False,
    num_steps=num_steps,
    baseline=baseline,
    batch_size=batch_size,
    order=order,
    score=score,
    blur_sigma=blur_sigma,
    key=key,
    road_iters=road_iters,
    road_noise=road_noise,
    baseline_value=baseline_value,
  )


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
  baseline_value: Array | None = None,
) -> tuple[Array, Array]:
  """Insertion curve and its area (Petsiuk et al. 2018, RISE).

  Starts from the baseline (default a gaussian blur of x, as RISE) and reveals the true
  voxels in order of decreasing attribution (`order='most'`) in `num_steps` equal steps; with
  'road' the hidden voxels are imputed from the revealed ones. Arguments and returns as
  `deletion_curve`; a faithful map makes the insertion area large.
  """
  return _curve(
    f,
    x,
    maps,
    targets,
    insert=True,
    num_steps=num_steps,
    baseline=baseline,
    batch_size=batch_size,
    order=order,
    score=score,
    blur_sigma=blur_sigma,
    key=key,
    road_iters=road_iters,
    road_noise=road_noise,
    baseline_value=baseline_value,
  )
