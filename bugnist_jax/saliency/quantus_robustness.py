"""Robustness and randomisation metrics of Quantus's catalogue, batched, compiled and N-d:
max- and average sensitivity (Yeh et al. 2019), random logit (Sixt et al. 2020) and smooth
MPRT (Hedström et al. 2023).

`explain(x, targets) -> maps` is any saliency method closed over the model (static: build it
once), e.g. `lambda x, t: saliency.vanilla_gradient(f, x, t)`. Random draws come from `key`;
`batch_size` perturbed copies (each a whole batch `x`) are explained at once.
"""

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp

from bugnist_jax.saliency._common import check_positive
from bugnist_jax.saliency.sanity import cascading_randomization, pearson, spearman, ssim

Array = jax.Array
Explain = Callable[[Array, Array], Array]
SIMILARITIES = ("ssim", "spearman", "pearson")


def _norm(a: Array) -> Array:
  return jnp.sqrt(jnp.sum(a.reshape(a.shape[0], -1) ** 2, 1))


@partial(jax.jit, static_argnames=("explain", "reduce", "batch_size"))
def _sensitivity_from_noise(explain, x, targets, noise, reduce, batch_size=None):
  """`reduce` ('max' or 'mean') over the noise `[S, *x.shape]` of ||a(x) - a(x + e)|| / ||a(x)||."""
  maps = explain(x, targets)
  ratios = jax.lax.map(
    lambda e: _norm(maps - explain(x + e, targets)) / _norm(maps), noise, batch_size=batch_size
  )  # [S, B]
  return ratios.max(0) if reduce == "max" else ratios.mean(0)


def _sensitivity(explain, x, targets, key, num_samples, radius, batch_size, reduce):
  check_positive(num_samples, "num_samples")
  check_positive(batch_size, "batch_size", allow_none=True)
  noise = jax.random.uniform(key, (num_samples, *x.shape), x.dtype, -radius, radius)
  return _sensitivity_from_noise(explain, x, targets, noise, reduce, batch_size)


def max_sensitivity(
  explain: Explain,
  x: Array,
  targets: Array,
  *,
  key: Array,
  num_samples: int = 200,
  radius: float = 0.2,
  batch_size: int | None = None,
) -> Array:
  """Max-sensitivity: the largest `||a(x) - a(x + e)|| / ||a(x)||` (Frobenius norms) over
  `num_samples` uniform perturbations `e ~ U(-radius, radius)` of every input entry (Quantus's
  defaults: 200 samples, lower_bound 0.2). `[B]`; lower is more robust."""
  return _sensitivity(explain, x, targets, key, num_samples, radius, batch_size, "max")


def avg_sensitivity(
  explain: Explain,
  x: Array,
  targets: Array,
  *,
  key: Array,
  num_samples: int = 200,
  radius: float = 0.2,
  batch_size: int | None = None,
) -> Array:
  """Average sensitivity: as `max_sensitivity`, the mean over the perturbations. `[B]`."""
  return _sensitivity(explain, x, targets, key, num_samples, radius, batch_size, "mean")


def _similarity(name: str, a: Array, b: Array) -> Array:
  if name == "ssim":
    return ssim(a, b)
  flat = lambda m: m.reshape(m.shape[0], -1)
  return spearman(flat(a), flat(b)) if name == "spearman" else pearson(flat(a), flat(b))


@partial(jax.jit, static_argnames=("explain", "num_classes", "similarity"))
def random_logit(
  explain: Explain,
  x: Array,
  targets: Array,
  *,
  key: Array,
  num_classes: int,
  similarity: str = "ssim",
) -> Array:
  """Random logit: the similarity of each sample's map for its target and for a class drawn
  uniformly from the others (Quantus's draw: offset `o ~ U{0..K-2}`, class `o + (o >= t)`).
  `similarity`: 'ssim' (`saliency.ssim`, 2D/3D), 'spearman' or 'pearson' of the flattened
  maps. `[B]`; lower means the map depends more on the class."""
  if similarity not in SIMILARITIES:
    raise ValueError(f"similarity: expected one of {SIMILARITIES}, got {similarity!r}")
  if num_classes < 2:
    raise ValueError(f"num_classes: expected at least 2, got {num_classes}")
  targets = jnp.asarray(targets)
  offset = jax.random.randint(key, targets.shape, 0, num_classes - 1)
  return _random_logit_from_offsets(explain, x, targets, offset, similarity)


def _random_logit_from_offsets(explain, x, targets, offset, similarity):
  other = offset + (offset >= targets)
  return _similarity(similarity, explain(x, targets), explain(x, other))


def smoothed(
  explain: Callable[[Any, Array], Array], key: Array, num_samples: int = 50, noise: float = 0.1
) -> Callable[[Any, Array], Array]:
  """`explain(params, x)` averaged over `num_samples` noisy inputs, as Quantus's SmoothMPRT:
  gaussian noise of std `noise * (max - min)` per sample, and the last copy noise-free."""

  def run(params, x):
    axes = tuple(range(1, x.ndim))
    std = noise * (jnp.max(x, axes, keepdims=True) - jnp.min(x, axes, keepdims=True))
    draws = jax.random.normal(key, (num_samples - 1, *x.shape), x.dtype) * std
    draws = jnp.concatenate([draws, jnp.zeros_like(x)[None]])
    return jax.lax.map(lambda e: explain(params, x + e), draws).mean(0)

  return run


def smooth_mprt(
  explain: Callable[[Any, Array], Array],
  params: Any,
  layer_order: Sequence[str],
  x: Array,
  *,
  key: Array,
  num_samples: int = 50,
  noise: float = 0.1,
  reinit=None,
) -> dict[str, Any]:
  """Smooth MPRT: `cascading_randomization` (its arguments and returns) of the maps denoised by
  `smoothed` (Quantus's SmoothMPRT: 50 samples, noise magnitude 0.1). Denoising removes the
  shattered-gradient noise that makes plain MPRT under-report randomisation."""
  check_positive(num_samples, "num_samples")
  k_noise, k_weights = jax.random.split(key)
  smooth = jax.jit(smoothed(explain, k_noise, num_samples, noise))
  return cascading_randomization(smooth, params, layer_order, x, key=k_weights, reinit=reinit)
