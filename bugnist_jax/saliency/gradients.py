"""Gradient attributions: vanilla gradient, input x gradient, SmoothGrad, Integrated Gradients.

All are pure functions of a model `f(x) -> logits [B, K]` and channels-last inputs
`[B, *spatial, C]`, jit-compiled with `f` and the sample counts static. They return maps of
`x`'s shape.
"""

from collections.abc import Callable
from functools import partial
from typing import Any

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
  target_gradient,
  with_targets,
)

SMOOTHGRAD_KINDS = ("smoothgrad", "smoothgrad_sq", "vargrad")


@with_targets(1)
@partial(jax.jit, static_argnums=0)
def vanilla_gradient(f: Model, x: Array, targets: Array | None = None) -> Array:
  """d logits[b, targets[b]] / d x[b]: `[B, *spatial, C]` -> the same shape.

  `targets`: None (predicted classes), int `[B]`, int `[B, T]` (maps `[B, T, ...]`) or a score
  function of `f`'s output (`_common`).
  """
  check_input(x)
  return target_gradient(f, x, resolve_targets(f(x), targets))


@with_targets(1)
@partial(jax.jit, static_argnums=0)
def input_x_gradient(f: Model, x: Array, targets: Array | None = None) -> Array:
  """`x * vanilla_gradient(f, x, targets)`, of `x`'s shape."""
  return x * vanilla_gradient(f, x, targets)


def _noise_tunnel(
  f: Model,
  x: Array,
  targets: Array | None,
  items: Any,
  make_noise: Callable[[Any], Array],
  batch_size: int | None,
  kind: str,
) -> Array:
  """Averages gradients at `x + make_noise(item)` over the leading axis of `items`.

  The squared kinds accumulate differences from the gradient at `x` itself (the shifted-data
  algorithm, one extra gradient): it keeps VarGrad's `E[d^2] - E[d]^2` free of cancellation.
  The plain mean needs no shift and skips that gradient (1/(n+1) of the work).
  """
  check_input(x)
  check_positive(batch_size, "batch_size", allow_none=True)
  if kind not in SMOOTHGRAD_KINDS:
    raise ValueError(f"kind: expected one of {SMOOTHGRAD_KINDS}, got {kind!r}")
  targets = resolve_targets(f(x), targets)
  n = jax.tree.leaves(items)[0].shape[0]
  if kind == "smoothgrad":
    noisy = lambda item: (target_gradient(f, x + make_noise(item), targets),)
    return chunked_sum(noisy, items, batch_size, x)[0] / n
  g0 = target_gradient(f, x, targets)

  def moments(item):
    d = target_gradient(f, x + make_noise(item), targets) - g0
    return d, d * d

  sums = chunked_sum(moments, items, batch_size, x)
  mean_d = sums[0] / n
  mean_d2 = sums[1] / n
  if kind == "smoothgrad_sq":  # E[(g0 + d)^2]
    return g0 * g0 + 2 * g0 * mean_d + mean_d2
  return mean_d2 - mean_d * mean_d  # vargrad: Var[g] = Var[d]


@with_targets(1)
@partial(jax.jit, static_argnums=0, static_argnames=("num_samples", "batch_size", "kind"))
def smoothgrad(
  f: Model,
  x: Array,
  targets: Array | None = None,
  *,
  key: Array,
  num_samples: int = 25,
  sigma: float | Array = 0.15,
  batch_size: int | None = None,
  kind: str = "smoothgrad",
) -> Array:
  """SmoothGrad (Smilkov et al. 2017), its square and VarGrad: `[B, *spatial, C]` -> same.

  Args:
    f: the model, `f(x) -> logits [B, K]`.
    x: inputs `[B, *spatial, C]`.
    targets: int `[B]`, or None for each sample's predicted class (at the clean input).
    key: PRNG key; noisy copy i of sample b uses `fold_in(split(key, num_samples)[i], b)`,
      so the result depends neither on `batch_size` nor on the samples after b in `x`.
    num_samples: number of noisy copies.
    sigma: noise standard deviation as a fraction of each sample's (max - min), as in the
      paper (0.15 there); 0 gives the vanilla gradient (to rounding).
    batch_size: noisy copies run at once (each one a whole batch `x`); None runs all at once.
      Sets peak memory.
    kind: 'smoothgrad' (mean gradient), 'smoothgrad_sq' (mean squared gradient) or 'vargrad'
      (variance of the gradient).
  """
  check_positive(num_samples, "num_samples")
  check_input(x)
  axes = tuple(range(1, x.ndim))
  scale = sigma * (jnp.max(x, axes, keepdims=True) - jnp.min(x, axes, keepdims=True))
  # Sample b's noise comes from fold_in(key_i, b), not from one draw over the whole batch: a
  # map then does not depend on the batch size or on the samples after it (explain pads its
  # last batch).
  positions = jnp.arange(x.shape[0])
  per_sample = lambda k, b: jax.random.normal(jax.random.fold_in(k, b), x.shape[1:], x.dtype)
  make_noise = lambda k: scale * jax.vmap(per_sample, (None, 0))(k, positions)
  keys = jax.random.split(key, num_samples)
  return _noise_tunnel(f, x, targets, keys, make_noise, batch_size, kind)


@partial(jax.jit, static_argnums=0, static_argnames=("batch_size", "kind"))
def _smoothgrad_from_noise(
  f: Model,
  x: Array,
  targets: Array | None = None,
  *,
  noise: Array,
  batch_size: int | None = None,
  kind: str = "smoothgrad",
) -> Array:
  """SmoothGrad with given noise `[num_samples, B, *spatial, C]` (absolute, added to `x`)."""
  if noise.shape[1:] != x.shape:
    raise ValueError(f"noise: expected shape [N, *{tuple(x.shape)}], got {tuple(noise.shape)}")
  return _noise_tunnel(f, x, targets, noise, lambda n: n, batch_size, kind)


@with_targets(1)
@partial(jax.jit, static_argnums=0, static_argnames=("steps", "batch_size"))
def integrated_gradients(
  f: Model,
  x: Array,
  targets: Array | None = None,
  *,
  baseline: Array | float | None = None,
  steps: int = 50,
  batch_size: int | None = None,
) -> Array:
  """Integrated Gradients (Sundararajan et al. 2017): `[B, *spatial, C]` -> same shape.

  The path integral is a `steps`-point Gauss-Legendre rule on [0, 1] (Captum's default,
  'gausslegendre'), so `attr[b].sum() ~= logits(x)[b, t] - logits(baseline)[b, t]`.

  Args:
    f: the model, `f(x) -> logits [B, K]`.
    x: inputs `[B, *spatial, C]`.
    targets: int `[B]`, or None for each sample's predicted class (at `x`).
    baseline: broadcastable to `x`; None means zeros.
    steps: quadrature points.
    batch_size: points run at once (each one a whole batch `x`); None runs all at once.
  """
  check_input(x)
  check_positive(steps, "steps")
  check_positive(batch_size, "batch_size", allow_none=True)
  baseline = jnp.zeros_like(x) if baseline is None else jnp.asarray(baseline, x.dtype)
  try:
    baseline = jnp.broadcast_to(baseline, x.shape)
  except ValueError as e:
    raise ValueError(f"baseline: shape {baseline.shape} does not broadcast to {x.shape}") from e
  targets = resolve_targets(f(x), targets)
  nodes, weights = np.polynomial.legendre.leggauss(steps)
  alphas = jnp.asarray((nodes + 1) / 2, x.dtype)
  # The weights and the sum stay at least float32: bfloat16's 8 bits would round the weights
  # (and the running sum) by up to 0.4 %, and break completeness beyond what steps can fix.
  acc = jnp.promote_types(x.dtype, jnp.float32)
  weights = jnp.asarray(weights / 2, acc)
  diff = x - baseline
  weighted_grad = lambda aw: aw[1] * target_gradient(f, baseline + aw[0] * diff, targets)
  return (diff * chunked_sum(weighted_grad, (alphas, weights), batch_size, x)).astype(x.dtype)


@partial(jax.jit, static_argnums=0)
def completeness_delta(
  f: Model,
  x: Array,
  attributions: Array,
  targets: Array | None = None,
  *,
  baseline: Array | float | None = None,
) -> Array:
  """How far a path attribution misses completeness (Captum's `convergence_delta`): `[B]`,
  `sum(attributions[b]) - (logits(x)[b, t] - logits(baseline)[b, t])`.

  Near 0 (relative to the logit gap) for Integrated Gradients with enough `steps`; more steps
  shrink it. `x`, `attributions` `[B, *spatial, C]`; `targets` int `[B]` or None (predicted
  classes at `x`); `baseline` as in `integrated_gradients` (None: zeros).
  """
  check_input(x)
  if attributions.shape != x.shape:
    raise ValueError(f"attributions: expected shape {x.shape}, got {attributions.shape}")
  base = jnp.zeros_like(x) if baseline is None else jnp.asarray(baseline, x.dtype)
  logits = f(x)
  targets = resolve_targets(logits, targets)
  gap = pick(logits, targets) - pick(f(jnp.broadcast_to(base, x.shape)), targets)
  return attributions.reshape(x.shape[0], -1).sum(1) - gap
