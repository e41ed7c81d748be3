"""Turning raw attributions into maps to look at: sign, channel reduction, clipping, scaling.

All work per sample on `[B, ...]` arrays and are jit-friendly (the options are Python strings).
"""

import jax.numpy as jnp

from bugnist_jax.saliency._common import Array

SIGNS = ("all", "absolute", "positive", "negative")
REDUCTIONS = ("sum", "mean", "max_abs")


def select_sign(attr: Array, sign: str = "absolute") -> Array:
  """'all' keeps signs, 'absolute' takes |a|, 'positive' max(a, 0), 'negative' max(-a, 0)."""
  if sign == "all":
    return attr
  if sign == "absolute":
    return jnp.abs(attr)
  if sign == "positive":
    return jnp.maximum(attr, 0)
  if sign == "negative":
    return jnp.maximum(-attr, 0)
  raise ValueError(f"sign: expected one of {SIGNS}, got {sign!r}")


def reduce_channels(attr: Array, how: str = "sum") -> Array:
  """`[B, *spatial, C]` -> `[B, *spatial]` by sum, mean or the largest |a| over channels."""
  if how == "sum":
    return jnp.sum(attr, axis=-1)
  if how == "mean":
    return jnp.mean(attr, axis=-1)
  if how == "max_abs":
    return jnp.max(jnp.abs(attr), axis=-1)
  raise ValueError(f"how: expected one of {REDUCTIONS}, got {how!r}")


def clip_percentile(attr: Array, lower: float = 0.0, upper: float = 99.5) -> Array:
  """Clips each sample `[B, ...]` to its own [lower, upper] percentiles (0..100)."""
  if not 0 <= lower <= upper <= 100:
    raise ValueError(f"lower, upper: expected 0 <= lower <= upper <= 100, got {lower}, {upper}")
  axes = tuple(range(1, attr.ndim))
  lo = jnp.percentile(attr, lower, axis=axes, keepdims=True)
  hi = jnp.percentile(attr, upper, axis=axes, keepdims=True)
  return jnp.clip(attr, lo, hi)


def normalize(attr: Array) -> Array:
  """Scales each sample `[B, ...]` to [0, 1] by its min and max; a constant sample gives 0."""
  axes = tuple(range(1, attr.ndim))
  low = jnp.min(attr, axis=axes, keepdims=True)
  span = jnp.max(attr, axis=axes, keepdims=True) - low
  return jnp.where(span > 0, (attr - low) / jnp.where(span > 0, span, 1), 0)


def to_heatmap(
  attr: Array, *, sign: str = "absolute", reduce: str | None = "sum", upper: float = 99.5
) -> Array:
  """Sign, channel reduction (None for CAMs, already `[B, *spatial]`), clip at the `upper`
  percentile, scale to [0, 1]: `[B, *spatial, C]` -> `[B, *spatial]`."""
  attr = select_sign(attr, sign)
  if reduce is not None:
    attr = reduce_channels(attr, reduce)
  lower = 100 - upper if sign == "all" else 0.0
  return normalize(clip_percentile(attr, lower, upper))
