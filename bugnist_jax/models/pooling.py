"""Pooling over the spatial axes of channels-last arrays, as functions and as stages.

Stages: `ReluMaxPool` (the fused ReLU + non-overlapping max pool of `ConvBlock`), `MaxPool`
(any window, stride and padding; torch's MaxPool), `AvgPool` (torch's AvgPool with
count_include_pad=True), `AdaptiveAvgPool` (torch's AdaptiveAvgPool, any rank) and
`GlobalAvgPool` (to a vector [B, C]).

Non-overlapping max pooling comes three ways. All compute the same function (floor, like
'VALID' windows). They differ in their gradient:
- 'window': `nnx.max_pool` (lax.reduce_window); XLA differentiates it into select-and-scatter,
  which is slow on CPU;
- 'reshape': a reshape and a max; JAX's gradient compares the input with the broadcast maximum
  and splits it between ties, reading the full-resolution input again;
- 'argmax': ReLU and pool in one op with a hand-written gradient. The forward pass keeps the
  position of each window's first maximum as int8 (-1 where the ReLU cuts the window off), so the
  backward pass writes the gradient from that small array alone, as PyTorch's MaxPool does; the
  full-resolution input need not be kept. Ties go to the first maximum (PyTorch's choice), so
  gradients equal JAX's where windows have one maximum. A custom VJP: reverse mode only (use
  'reshape' for jvp, jacfwd or hessian).
"""

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax

from bugnist_jax.models.contract import FLAT, SPATIAL, Op, Padding, Stage, window

POOL_IMPLS = ("reshape", "window", "argmax")


def check_pool_impl(impl: str) -> None:
  """Raises ValueError naming the valid impls unless `impl` is one."""
  if impl not in POOL_IMPLS:
    raise ValueError(f"unknown pool impl {impl!r}; valid: {', '.join(POOL_IMPLS)}")


def max_pool(x: jax.Array, window: int = 2, impl: str = "reshape") -> jax.Array:
  """Max over non-overlapping windows of every spatial axis of x [B, *spatial, C] (floor)."""
  check_pool_impl(impl)
  if impl == "window":
    dims = (window,) * (x.ndim - 2)
    return nnx.max_pool(x, window_shape=dims, strides=dims, padding="VALID")
  if impl == "argmax":
    return _argmax_pool(x, window, False)
  return jnp.max(_windows(_crop(x, window), window), axis=_window_axes(x.ndim - 2))


def relu_max_pool(
  x: jax.Array, window: int = 2, impl: str = "argmax", bias: jax.Array | None = None
) -> jax.Array:
  """max_pool(relu(x + bias)) [B, *spatial // window, C]; bias [C] or None.

  'argmax' fuses the three, gradient included; its bias gradient sums the pooled gradient (a
  window's one nonzero), 2^ndim times fewer numbers than XLA's transpose of the broadcast.
  """
  if impl == "argmax":
    return _argmax_pool(x, window, True, bias)
  if bias is not None:
    x = x + bias
  return max_pool(nnx.relu(x), window, impl)


def _window_axes(ndim: int) -> tuple[int, ...]:
  return tuple(2 + 2 * i for i in range(ndim))


def _crop(x: jax.Array, window: int) -> jax.Array:
  """x cut to whole windows (floor), so every element below belongs to one window."""
  return x[(slice(None), *(slice(0, s // window * window) for s in x.shape[1:-1]), slice(None))]


def _windows(x: jax.Array, window: int) -> jax.Array:
  """x [B, *spatial, C] (whole windows) reshaped to [B, n1, window, n2, window, ..., C]."""
  split = [d for s in x.shape[1:-1] for d in (s // window, window)]
  return x.reshape(x.shape[0], *split, x.shape[-1])


def _window_index(window: int, ndim: int) -> np.ndarray:
  """Flat position in the window, shaped to broadcast against `_windows` output."""
  shape = [1, 1] + [window, 1] * ndim
  return np.arange(window**ndim, dtype=np.int8).reshape(shape[:-1] + [1])


def _argmax_pool(x: jax.Array, window: int, relu: bool, bias: jax.Array | None = None):
  if window ** (x.ndim - 2) > 127:
    raise ValueError(f"argmax pool: a {window}^{x.ndim - 2} window does not fit int8 positions")
  bias = jnp.zeros(x.shape[-1:], x.dtype) if bias is None else bias.astype(x.dtype)
  return _argmax_pool_exact(_crop(x, window), bias, window, relu)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _argmax_pool_exact(x: jax.Array, bias: jax.Array, window: int, relu: bool) -> jax.Array:
  return _argmax_pool_fwd(x, bias, window, relu)[0]


def _argmax_pool_fwd(x, bias, window, relu):
  ndim = x.ndim - 2
  # A reduce-window, not a reshape and max: XLA:CPU fuses no producer into it, so x is read
  # from memory, not recomputed inside a slow 8-D loop. The bias is constant over a window: it
  # is added after the max and does not move the argmax.
  dims = (1, *(window,) * ndim, 1)
  best = lax.reduce_window(x, -np.inf, lax.max, dims, dims, "VALID") + bias
  # argmax with the window as one trailing axis: a single fast reduction, first maximum wins.
  order = (0, *range(1, 2 * ndim, 2), 2 * ndim + 1, *_window_axes(ndim))
  trailing = jnp.transpose(_windows(x, window), order).reshape(*best.shape, -1)
  where = jnp.argmax(trailing, axis=-1).astype(jnp.int8)
  if relu:
    where = jnp.where(best > 0, where, jnp.int8(-1))
    best = jnp.maximum(best, 0)
  return best, where


def _argmax_pool_bwd(window, relu, where, g):
  ndim = g.ndim - 2
  expand = lambda a: jnp.expand_dims(a, _window_axes(ndim))
  # Positions compared as floats (exact for 0..127): XLA:CPU vectorises that loop, not int8's.
  position = _window_index(window, ndim).astype(g.dtype)
  grads = jnp.where(position == expand(where.astype(g.dtype)), expand(g), jnp.zeros((), g.dtype))
  grads = grads.reshape(g.shape[0], *(s * window for s in g.shape[1:-1]), g.shape[-1])
  # Each window passes its gradient to one position (none where the ReLU cut it off), so the
  # bias gradient is a sum over the pooled grid.
  passed = jnp.where(where >= 0, g, jnp.zeros((), g.dtype))
  return grads, jnp.sum(passed, axis=tuple(range(g.ndim - 1)))


_argmax_pool_exact.defvjp(_argmax_pool_fwd, _argmax_pool_bwd)


class ReluMaxPool(nnx.Module):
  """relu(x + bias), then a non-overlapping `window` max pool; `impl` as `relu_max_pool`."""

  def __init__(self, window: int = 2, impl: str = "argmax"):
    check_pool_impl(impl)
    self.window, self.impl = int(window), impl

  def __call__(self, x: jax.Array, bias: jax.Array | None = None) -> jax.Array:
    return relu_max_pool(x, self.window, self.impl, bias=bias)


class _WindowPool(Stage):
  """A pool with a square window, any stride (default: the window) and padding ('VALID',
  'SAME' or explicit (lo, hi) pairs), on [B, *S, C]."""

  kind = SPATIAL

  def __init__(self, window: int = 3, stride: int | None = None, padding: Padding = "VALID"):
    self.window = int(window)
    self.stride = self.window if stride is None else int(stride)
    self.padding = padding if isinstance(padding, str) else tuple(map(tuple, padding))

  def rf_ops(self, ndim: int) -> list[Op]:
    return [window(self.window, self.stride, self.padding, ndim)]


class MaxPool(_WindowPool):
  """torch's MaxPool: padding counts as -inf."""

  def __call__(self, x: jax.Array) -> jax.Array:
    ndim = x.ndim - 2
    if self.window == self.stride and self.padding == "VALID":  # the fast, non-overlapping path
      return max_pool(x, self.window, "reshape")
    return nnx.max_pool(
      x, window_shape=(self.window,) * ndim, strides=(self.stride,) * ndim, padding=self.padding
    )


def avg_pool(
  x: jax.Array, window: int, stride: int | None = None, padding: Padding = "VALID"
) -> jax.Array:
  """Mean over windows of every spatial axis of x [B, *S, C]; padding counts as zeros."""
  stride = window if stride is None else stride
  ndim = x.ndim - 2
  if window == stride and padding == "VALID":  # non-overlapping: a reshape and a mean
    return jnp.mean(_windows(_crop(x, window), window), axis=_window_axes(ndim))
  dims = (1, *(window,) * ndim, 1)
  pads = padding if isinstance(padding, str) else ((0, 0), *padding, (0, 0))
  total = lax.reduce_window(
    x, jnp.zeros((), x.dtype), lax.add, dims, (1, *(stride,) * ndim, 1), pads
  )
  return total / window**ndim


class AvgPool(_WindowPool):
  """torch's AvgPool with count_include_pad=True: padding counts as zeros."""

  def __call__(self, x: jax.Array) -> jax.Array:
    return avg_pool(x, self.window, self.stride, self.padding)


def _adaptive_matrix(n: int, out: int) -> np.ndarray:
  """[out, n]: bin i averages [floor(i n / out), ceil((i + 1) n / out)), as torch."""
  m = np.zeros((out, n), np.float32)
  for i in range(out):
    lo, hi = (i * n) // out, -((-(i + 1) * n) // out)
    m[i, lo:hi] = 1.0 / (hi - lo)
  return m


def adaptive_avg_pool(x: jax.Array, out: int | Sequence[int]) -> jax.Array:
  """torch's AdaptiveAvgPool on x [B, *S, C] to spatial `out` (an int for every axis)."""
  ndim = x.ndim - 2
  out = (int(out),) * ndim if isinstance(out, int) else tuple(out)
  for axis, (n, o) in enumerate(zip(x.shape[1:-1], out, strict=True), start=1):
    if n != o:
      x = jnp.moveaxis(jnp.tensordot(_adaptive_matrix(n, o), x, axes=([1], [axis])), 0, axis)
  return x


class AdaptiveAvgPool(Stage):
  """torch's AdaptiveAvgPool to a fixed spatial size; its bins depend on the input size, so it
  declares no receptive-field geometry (later stages count as seeing the whole input)."""

  kind = SPATIAL

  def __init__(self, out: int):
    self.out = int(out)

  def __call__(self, x: jax.Array) -> jax.Array:
    return adaptive_avg_pool(x, self.out).astype(x.dtype)

  def rf_ops(self, ndim: int) -> None:
    return None


class GlobalAvgPool(Stage):
  """Mean over every spatial axis: [B, *S, C] -> [B, C]."""

  kind = FLAT

  def __call__(self, x: jax.Array) -> jax.Array:
    return jnp.mean(x, axis=tuple(range(1, x.ndim - 1)))
