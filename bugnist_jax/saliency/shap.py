"""The SHAP family: Gradient SHAP / expected gradients, and feature ablation over a region mask.

Pure functions of a model `f(x) -> logits [B, K]` and channels-last inputs `[B, *spatial, C]`,
compiled with `f` and the sample counts static, sampled in chunks of `batch_size` (peak memory
set by it, the result not). `targets` as every method (`_common`).
"""

import math
from functools import partial

import jax
import jax.numpy as jnp

from bugnist_jax.saliency._common import (
  Array,
  Model,
  check_input,
  check_positive,
  chunked_sum,
  pick,
  resolve_targets,
  target_gradient,
  with_targets,
)


def _shap_sum(f, x, targets, baselines, alphas, noise, batch_size):
  """`mean_n grad(b_n + a_n (x + e_n - b_n)) * (x + e_n - b_n)` over the leading axis of the
  draws: baselines `[N, B, *spatial, C]`, alphas `[N, B]`, noise `[N, B, *spatial, C]`."""
  targets = resolve_targets(f(x), targets)
  expand = lambda a: a.reshape(*a.shape, *(1,) * (x.ndim - 1))

  def term(draw):
    base, alpha, eps = draw
    diff = x + eps - base
    return target_gradient(f, base + expand(alpha) * diff, targets) * diff

  return chunked_sum(term, (baselines, alphas, noise), batch_size, x) / alphas.shape[0]


@with_targets(1)
@partial(jax.jit, static_argnums=0, static_argnames=("num_samples", "batch_size"))
def gradient_shap(
  f: Model,
  x: Array,
  targets: Array | None = None,
  *,
  baselines: Array,
  key: Array,
  num_samples: int = 25,
  stdev: float = 0.0,
  batch_size: int | None = None,
) -> Array:
  """Gradient SHAP (Lundberg & Lee 2017; Captum's GradientShap), expected gradients with
  baselines from data (Erion et al. 2021): `[B, *spatial, C]` -> the same shape.

  For each of `num_samples` draws and each sample: a baseline picked uniformly from
  `baselines`, `alpha ~ U(0, 1)` and gaussian noise of std `stdev` (absolute, in input space, as
  Captum's `stdevs`; 0 for expected gradients) added to `x`; the map is the mean of
  `grad(b + alpha (x + e - b)) * (x + e - b)`. In expectation the map sums to
  `E_b[logit(x) - logit(b)]` (IG's completeness, averaged over baselines).

  Args:
    f: the model, `f(x) -> logits [B, K]`.
    x: inputs `[B, *spatial, C]`.
    targets: int `[B]`, `[B, T]`, a score function, or None (predicted classes).
    baselines: `[N_b, *spatial, C]`: the distribution to draw from (training volumes, noise);
      `[1, ...]` for one baseline; or `[N_b, B, *spatial, C]`, a set per sample (its blur).
    key: PRNG key; draw i uses `jax.random.split(key, num_samples)[i]`, so the result does not
      depend on `batch_size`.
    num_samples: draws per sample.
    stdev: std of the noise added to `x`.
    batch_size: draws run at once (each a whole batch `x`); None runs all at once.
  """
  check_input(x)
  check_positive(num_samples, "num_samples")
  check_positive(batch_size, "batch_size", allow_none=True)
  baselines = jnp.asarray(baselines, x.dtype)
  per_sample = baselines.ndim == x.ndim + 1 and baselines.shape[1:] == x.shape
  if not per_sample and (baselines.ndim != x.ndim or baselines.shape[1:] != x.shape[1:]):
    raise ValueError(
      f"baselines: expected [N, *{tuple(x.shape[1:])}] (a set of inputs to draw from) or "
      f"[N, *{tuple(x.shape)}] (a set per sample), got {tuple(baselines.shape)}"
    )
  keys = jax.random.split(key, num_samples)

  def draws(k):
    k_index, k_alpha, k_noise = jax.random.split(k, 3)
    index = jax.random.randint(k_index, x.shape[:1], 0, baselines.shape[0])
    noise = stdev * jax.random.normal(k_noise, x.shape, x.dtype)
    base = baselines[index, jnp.arange(x.shape[0])] if per_sample else baselines[index]
    return base, jax.random.uniform(k_alpha, x.shape[:1], x.dtype), noise

  base, alphas, noise = jax.vmap(draws)(keys)
  return _shap_sum(f, x, targets, base, alphas, noise, batch_size)


@partial(jax.jit, static_argnums=0, static_argnames=("batch_size",))
def _gradient_shap_from_draws(f, x, targets, *, baselines, alphas, noise, batch_size=None):
  """Gradient SHAP with given draws: baselines `[N, B, ...]`, alphas `[N, B]`, noise as x."""
  return _shap_sum(f, x, targets, baselines, alphas, noise, batch_size)


@with_targets(1)
@partial(jax.jit, static_argnums=0, static_argnames=("num_features", "batch_size"))
def feature_ablation(
  f: Model,
  x: Array,
  targets: Array | None = None,
  *,
  feature_mask: Array,
  num_features: int,
  baseline: Array | float = 0.0,
  batch_size: int | None = None,
) -> Array:
  """Feature ablation over regions (Captum's FeatureAblation with a `feature_mask`):
  `[B, *spatial, C]` -> the same shape (equal over C and within a region).

  Region g (the voxels where `feature_mask == g`, all channels) takes the baseline, and each of
  its voxels gets the drop of the target logit, `logit(x) - logit(x with g ablated)`. Voxels of
  ids outside `0..num_features-1` are never ablated and get 0.

  Args:
    f: the model, `f(x) -> logits [B, K]`.
    x: inputs `[B, *spatial, C]`.
    targets: int `[B]`, `[B, T]`, a score function, or None (predicted classes).
    feature_mask: int region ids, `[*spatial]` (one segmentation for the batch) or
      `[B, *spatial]` (supervoxels per sample; `block_mask` gives a grid).
    num_features: number of regions (static: one forward pass each).
    baseline: value put in an ablated region, broadcastable to `x`.
    batch_size: regions run at once; None runs all at once.
  """
  check_input(x)
  check_positive(num_features, "num_features")
  check_positive(batch_size, "batch_size", allow_none=True)
  mask = jnp.broadcast_to(jnp.asarray(feature_mask), x.shape[:-1])
  if not jnp.issubdtype(mask.dtype, jnp.integer):
    raise ValueError(f"feature_mask: expected integer region ids, got dtype {mask.dtype}")
  logits = f(x)
  targets = resolve_targets(logits, targets)
  clean = pick(logits, targets)
  baseline = jnp.broadcast_to(jnp.asarray(baseline, x.dtype), x.shape)

  def one_region(g):
    region = mask == g  # [B, *spatial]
    drop = clean - pick(f(jnp.where(region[..., None], baseline, x)), targets)
    return drop.reshape(-1, *(1,) * (x.ndim - 2)) * region.astype(x.dtype)

  total = chunked_sum(one_region, jnp.arange(num_features), batch_size, x)
  return jnp.broadcast_to(total[..., None], x.shape)


def block_mask(spatial: tuple[int, ...], block: int | tuple[int, ...]) -> tuple[Array, int]:
  """A grid of cubic regions for `feature_ablation`: (ids `[*spatial]` int32, their count).

  Regions are `block` voxels a side (per dim), the last ones clipped at the far edges.
  """
  blocks = (block,) * len(spatial) if isinstance(block, int) else tuple(block)
  if len(blocks) != len(spatial):
    raise ValueError(f"block: expected {len(spatial)} sizes, got {block!r}")
  for b in blocks:
    check_positive(b, "block")
  counts = [-(-n // b) for n, b in zip(spatial, blocks, strict=True)]
  coords = jnp.meshgrid(
    *[jnp.arange(n) // b for n, b in zip(spatial, blocks, strict=True)], indexing="ij"
  )
  ids = jnp.ravel_multi_index(tuple(coords), counts, mode="clip").astype(jnp.int32)
  return ids, math.prod(counts)
