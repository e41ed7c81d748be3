"""Building blocks shared by the 2D and 3D models."""

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

from bugnist_jax.models.conv import matmul_conv_general_dilated

CONV_IMPLS = {"xla": lax.conv_general_dilated, "matmul": matmul_conv_general_dilated}


def max_pool(x: jax.Array, window: int = 2, impl: str = "reshape") -> jax.Array:
  """Non-overlapping max pooling over all spatial axes of x [B, *spatial, C] ('VALID', floor).

  impl='reshape' writes the pool as a reshape and a max. Its gradient is an elementwise mask,
  far cheaper on CPU than the select-and-scatter that impl='window' (lax.reduce_window)
  differentiates into. Both compute the same function.
  """
  spatial = x.shape[1:-1]
  if impl == "window":
    dims = (window,) * len(spatial)
    return nnx.max_pool(x, window_shape=dims, strides=dims, padding="VALID")
  if impl != "reshape":
    raise ValueError(f"unknown pool impl {impl!r}; valid: reshape, window")
  out = [s // window for s in spatial]
  x = x[(slice(None), *(slice(0, o * window) for o in out), slice(None))]
  split = [d for o in out for d in (o, window)]
  x = x.reshape(x.shape[0], *split, x.shape[-1])
  return jnp.max(x, axis=tuple(2 + 2 * i for i in range(len(spatial))))


class ConvBlock(nnx.Module):
  """Conv (k, 'SAME') -> optional BatchNorm -> ReLU -> optional max pool, on [B, *spatial, C].

  conv_impl 'xla' is lax.conv_general_dilated (best on GPU/TPU); 'matmul' rewrites the
  convolution as matmuls (`conv.py`), ~2x faster on CPU. Same parameters either way.
  """

  def __init__(
    self,
    in_features: int,
    out_features: int,
    *,
    ndim: int,
    kernel: int = 3,
    strides: int = 1,
    pool: int | None = 2,
    batch_norm: bool = False,
    pool_impl: str = "reshape",
    conv_impl: str = "xla",
    dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    if conv_impl not in CONV_IMPLS:
      raise ValueError(f"unknown conv impl {conv_impl!r}; valid: {', '.join(CONV_IMPLS)}")
    self.conv = nnx.Conv(
      in_features,
      out_features,
      kernel_size=(kernel,) * ndim,
      strides=(strides,) * ndim,
      padding="SAME",
      use_bias=not batch_norm,
      dtype=dtype,
      param_dtype=jnp.float32,
      conv_general_dilated=CONV_IMPLS[conv_impl],
      rngs=rngs,
    )
    self.norm = (
      nnx.BatchNorm(out_features, dtype=dtype, param_dtype=jnp.float32, rngs=rngs)
      if batch_norm
      else None
    )
    self.pool = pool
    self.pool_impl = pool_impl

  def __call__(self, x: jax.Array) -> jax.Array:
    x = self.conv(x)
    if self.norm is not None:
      x = self.norm(x)
    x = nnx.relu(x)
    if self.pool:
      x = max_pool(x, self.pool, self.pool_impl)
    return x


class DenseBlock(nnx.Module):
  """Flatten (if needed) -> Linear -> ReLU -> Dropout."""

  def __init__(self, in_features, out_features, *, dropout=0.0, dtype=jnp.float32, rngs):
    self.linear = nnx.Linear(
      in_features, out_features, dtype=dtype, param_dtype=jnp.float32, rngs=rngs
    )
    self.dropout = nnx.Dropout(dropout, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    x = x.reshape(x.shape[0], -1)
    return self.dropout(nnx.relu(self.linear(x)))


class Logits(nnx.Module):
  """Final Linear layer; logits always come out in float32 for a stable loss."""

  def __init__(self, in_features, num_classes, *, dtype=jnp.float32, rngs):
    self.linear = nnx.Linear(
      in_features, num_classes, dtype=dtype, param_dtype=jnp.float32, rngs=rngs
    )

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.linear(x.reshape(x.shape[0], -1)).astype(jnp.float32)
