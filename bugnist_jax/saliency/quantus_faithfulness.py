"""Faithfulness metrics of Quantus's catalogue, batched, compiled and N-d: faithfulness
correlation (Bhatt et al. 2020), monotonicity correlation (Nguyen & Martinez 2020), infidelity
(Yeh et al. 2019, as Quantus computes it).

`f(x) -> logits [B, K]` (static), `x [B, *spatial, C]`, `maps [B, *spatial]` (reduce channels
first); a *feature* is one voxel with all its channels (Quantus perturbs single entries of
`[B, C, *spatial]`; with one channel the two agree). Scores are per sample `[B]`; the model's
score is the target logit (`score='prob'`: its softmax probability). Random draws come from
`key`, so results do not depend on `batch_size` (items evaluated at once, which sets memory).
"""

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from bugnist_jax.saliency._common import pick, resolve_targets
from bugnist_jax.saliency._maps import Array, _flat, voxel_ranks
from bugnist_jax.saliency.faithfulness import check_scored
from bugnist_jax.saliency.sanity import pearson, spearman


def _scorer(f, x, targets, score):
  """(targets [B], scores of an input batch -> [B])."""
  targets = resolve_targets(f(x), targets)

  def scores(v):
    out = f(v)
    return pick(jax.nn.softmax(out, -1) if score == "prob" else out, targets)

  return targets, scores


def _removed(x: Array, chosen: Array, baseline: Array) -> Array:
  """x with the chosen voxels (`[B, n]` bool over the flat spatial grid) set to the baseline."""
  return jnp.where(chosen.reshape(*x.shape[:-1], 1), baseline, x)


@partial(jax.jit, static_argnames=("f", "score", "batch_size"))
def _faithfulness_from_subsets(f, x, maps, targets, subsets, baseline, score, batch_size):
  """Faithfulness correlation for given voxel subsets `[R, B, S]` (flat indices)."""
  check_scored(x, maps, score, batch_size)
  targets, scores = _scorer(f, x, targets, score)
  clean, a = scores(x), _flat(maps)
  base = jnp.broadcast_to(jnp.asarray(baseline, x.dtype), x.shape)
  rows = jnp.arange(a.shape[0])[:, None]

  def run(subset):
    chosen = jnp.zeros(a.shape, bool).at[rows, subset].set(True)
    return clean - scores(_removed(x, chosen, base)), jnp.sum(jnp.where(chosen, a, 0), 1)

  deltas, sums = jax.lax.map(run, subsets, batch_size=batch_size)  # [R, B] each
  return pearson(sums.T, deltas.T)


def faithfulness_correlation(
  f,
  x: Array,
  maps: Array,
  targets: Array | None = None,
  *,
  key: Array,
  num_runs: int = 100,
  subset_size: int = 224,
  baseline: Array | float = 0.0,
  score: str = "logit",
  batch_size: int | None = None,
) -> Array:
  """Faithfulness correlation: Pearson correlation, over `num_runs` random subsets of
  `subset_size` voxels, between the attribution summed over the subset and the drop of the
  target score when the subset takes the `baseline` (model-input space, broadcastable to x;
  Quantus's default is its 'black'). `[B]`; Quantus's defaults.
  """
  n = math.prod(maps.shape[1:])
  if not 1 <= subset_size <= n:
    raise ValueError(f"subset_size: expected 1..{n} (the voxels of a map), got {subset_size}")
  keys = jax.random.split(key, num_runs * maps.shape[0]).reshape(num_runs, maps.shape[0])
  subsets = jax.vmap(jax.vmap(lambda k: jax.random.permutation(k, n)[:subset_size]))(keys)
  return _faithfulness_from_subsets(f, x, maps, targets, subsets, baseline, score, batch_size)


@partial(jax.jit, static_argnames=("f", "num_samples", "features_in_step", "score", "batch_size"))
def monotonicity_correlation(
  f,
  x: Array,
  maps: Array,
  targets: Array | None = None,
  *,
  key: Array | None = None,
  num_samples: int = 100,
  features_in_step: int = 1,
  baseline: Array | float | None = None,
  uniform_range: tuple[float, float] = (0.0, 1.0),
  eps: float = 1e-5,
  score: str = "logit",
  batch_size: int | None = None,
) -> Array:
  """Monotonicity correlation: Spearman correlation, over steps through the voxels in
  increasing attribution (`features_in_step` voxels a step, ties in a seeded random order), of
  the step's attribution sum and `E[(score(x with the step's voxels replaced) - score(x))^2] /
  score(x)^2` (no division when |score(x)| < eps), the mean over `num_samples` replacements.
  `baseline=None` replaces by uniform noise in `uniform_range` (Quantus's default 'uniform',
  drawn from `key`); a value (broadcastable to x) replaces by it. One forward pass per (step,
  sample): a costly metric by design; `batch_size` of them run at once. `[B]`.
  """
  check_scored(x, maps, score, batch_size)
  targets, scores = _scorer(f, x, targets, score)
  clean, a = scores(x), _flat(maps)
  b, n = a.shape
  steps = -(-n // features_in_step)
  step_of = _flat(voxel_ranks(maps, descending=False, key=key)) // features_in_step  # [B, n]
  key = jax.random.key(0) if key is None else key
  fixed = None if baseline is None else jnp.broadcast_to(jnp.asarray(baseline, x.dtype), x.shape)

  def one(item):
    step, k = item
    chosen = step_of == step
    low, high = uniform_range
    base = jax.random.uniform(k, x.shape, x.dtype, low, high) if fixed is None else fixed
    return (scores(_removed(x, chosen, base)) - clean) ** 2

  items = (jnp.repeat(jnp.arange(steps), num_samples), jax.random.split(key, steps * num_samples))
  sq = jax.lax.map(one, items, batch_size=batch_size).reshape(steps, num_samples, b).mean(1)
  inv = jnp.where(jnp.abs(clean) >= eps, 1 / jnp.where(clean == 0, 1, clean) ** 2, 1.0)
  sums = jax.vmap(lambda s: jnp.sum(jnp.where(step_of == s, a, 0), 1))(jnp.arange(steps))
  return spearman(sums.T, (sq * inv).T)


@partial(jax.jit, static_argnames=("f", "patch_size", "score", "batch_size"))
def infidelity(
  f,
  x: Array,
  maps: Array,
  targets: Array | None = None,
  *,
  patch_size: int | tuple[int, ...] = 4,
  baseline: Array | float = 0.0,
  score: str = "logit",
  batch_size: int | None = None,
) -> Array:
  """Infidelity as Quantus computes it: the grid of `patch_size` patches is removed one patch
  more at a time (C order, all channels, to the `baseline`), and the score is the mean over the
  steps of `(score(x) - score(x_k) - sum(maps * (x - x_k)))^2`; lower is more faithful.
  (Captum's infidelity draws random perturbations instead.) Spatial sizes must be multiples
  of the patch size. `[B]`.
  """
  check_scored(x, maps, score, batch_size)
  spatial = maps.shape[1:]
  patch = (patch_size,) * len(spatial) if isinstance(patch_size, int) else tuple(patch_size)
  if len(patch) != len(spatial) or any(s % p for s, p in zip(spatial, patch, strict=True)):
    raise ValueError(
      f"patch_size: expected sizes dividing the spatial shape {spatial}, got {patch_size}"
    )
  targets, scores = _scorer(f, x, targets, score)
  clean = scores(x)
  base = jnp.broadcast_to(jnp.asarray(baseline, x.dtype), x.shape)
  grid = [np.arange(s) // p for s, p in zip(spatial, patch, strict=True)]
  counts = [s // p for s, p in zip(spatial, patch, strict=True)]
  patch_of = jnp.asarray(np.ravel_multi_index(np.meshgrid(*grid, indexing="ij"), counts).ravel())

  def step(k):
    chosen = jnp.broadcast_to(patch_of <= k, maps.shape[:1] + patch_of.shape)
    removed = _removed(x, chosen, base)
    explained = jnp.sum(maps[..., None] * (x - removed), axis=tuple(range(1, x.ndim)))
    return (clean - scores(removed) - explained) ** 2

  return jax.lax.map(step, jnp.arange(math.prod(counts)), batch_size=batch_size).mean(0)
