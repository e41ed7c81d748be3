"""Helpers of the metrics and sanity checks: map checks, safe shares, voxel ranks, N-d blur."""

from functools import partial

import jax
import jax.numpy as jnp

Array = jax.Array


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


def voxel_ranks(maps: Array, descending: bool = True, key: Array | None = None) -> Array:
  """Position of every voxel when sorted by attribution: `[B, *spatial]` int32, 0 = first.

  `descending=True` puts the most relevant voxel first. Tied voxels are ordered by a seeded
  random permutation (one per sample, from `key`, default `jax.random.key(0)`): deterministic,
  and without the bias of flat-index order, which would always put the first slices of a
  volume (low z) first among the many exact zeros of a ReLU-ed or clipped map.
  """
  flat = _flat(maps)
  b, n = flat.shape
  key = jax.random.key(0) if key is None else key
  # Sort a random permutation of the voxels (stable), then map back: ties keep the random order.
  perm = jax.vmap(lambda k: jax.random.permutation(k, n))(jax.random.split(key, b))
  values = jnp.take_along_axis(flat, perm, axis=1)
  order = jnp.take_along_axis(
    perm, jnp.argsort(-values if descending else values, axis=1, stable=True), axis=1
  )
  ranks = jnp.zeros_like(order).at[jnp.arange(b)[:, None], order].set(jnp.arange(n))
  return ranks.reshape(maps.shape).astype(jnp.int32)


def gaussian_radius(sigma: float, truncate: float = 3.5) -> int:
  """Radius of `gaussian_filter`'s 1-D kernel: `int(truncate * sigma + 0.5)` (as skimage's
  SSIM window); 0 means no blur."""
  return int(truncate * sigma + 0.5) if sigma > 0 else 0


@partial(jax.jit, static_argnames=("sigma", "axes", "truncate"))
def gaussian_filter(x: Array, sigma: float, axes: tuple[int, ...], truncate: float = 3.5) -> Array:
  """Separable N-d gaussian blur of `x` along `axes`, symmetric padding (scipy's 'reflect').

  The 1-D kernel has radius `gaussian_radius(sigma, truncate)`.
  """
  radius = gaussian_radius(sigma, truncate)
  if radius == 0:  # sigma <= 0, or too small for a tap
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
