"""Convolution written as matmuls: a drop-in for `lax.conv_general_dilated` in nnx.Conv.

XLA's CPU backend runs 3D convolutions (and their gradients) at a few GFLOP/s but float32
matmuls at over 100. A convolution is a sum over the k^3 kernel offsets of a shifted input
times a [Cin, Cout] matrix:
- with few input channels (the first layer, Cin=1) summing the shifted products directly
  ("shift-add") was ~8x faster forward and ~4x forward+backward than XLA's convolution
  (first BugCNN3D layer at 64x32x32, batch 16, measured on a busy 2-core CPU);
- with more channels, gathering the shifted copies once (im2col) and doing one matmul by the
  [k^3 * Cin, Cout] kernel was 1.2-3x faster for forward+backward (same conditions).
Whole models, idle machine: 1.6-2.1x over XLA (benchmarks/RESULTS.md).
Parameters are unchanged (kernel [*K, Cin, Cout]), so a checkpoint works with either
implementation; tests check they compute the same function as XLA's.
"""

import functools
import itertools

import jax
import jax.numpy as jnp
from jax import lax

# Below this many input channels shift-add beats im2col (measured on a 2-core CPU).
SHIFT_ADD_MAX_CHANNELS = 4


def matmul_conv_general_dilated(
  lhs: jax.Array,
  rhs: jax.Array,
  window_strides,
  padding,
  lhs_dilation=None,
  rhs_dilation=None,
  dimension_numbers=None,
  feature_group_count: int = 1,
  precision=None,
  preferred_element_type=None,
  out_sharding=None,
) -> jax.Array:
  """Channels-last convolution lhs [B, *S, Cin] * rhs [*K, Cin, Cout] -> [B, *S', Cout].

  Supports what nnx.Conv uses in this project: any strides and padding, no dilation, one
  feature group. Other arguments raise NotImplementedError rather than compute wrongly.
  """
  del dimension_numbers, out_sharding  # nnx.Conv always passes channels-last numbers
  if any(d != 1 for d in (lhs_dilation or ())) or any(d != 1 for d in (rhs_dilation or ())):
    raise NotImplementedError("im2col convolution: dilation is not supported")
  if feature_group_count != 1:
    raise NotImplementedError("im2col convolution: feature groups are not supported")
  kernel = rhs.shape[:-2]
  spatial = lhs.shape[1:-1]
  if isinstance(padding, str):
    padding = lax.padtype_to_pads(spatial, kernel, window_strides, padding)
  x = jnp.pad(lhs, [(0, 0), *padding, (0, 0)])
  out = [
    (s + lo + hi - k) // st + 1
    for s, (lo, hi), k, st in zip(spatial, padding, kernel, window_strides, strict=True)
  ]
  columns = [
      x[(slice(None), *(slice(o, o + (n - 1) * st + 1, st)
                        for o, n, st in zip(offset, out, window_strides, strict=True)))]
      for offset in itertools.product(*(range(k) for k in kernel))
  ]  # fmt: skip
  matmul = functools.partial(
    jnp.matmul, precision=precision, preferred_element_type=preferred_element_type
  )
  if lhs.shape[-1] < SHIFT_ADD_MAX_CHANNELS:
    weights = rhs.reshape(len(columns), *rhs.shape[-2:])
    return sum(matmul(c, w) for c, w in zip(columns, weights, strict=True))
  cols = jnp.concatenate(columns, axis=-1)  # [B, *out, prod(K) * Cin], offset-major
  return matmul(cols, rhs.reshape(-1, rhs.shape[-1]))
