"""Building blocks shared by the 2D and 3D models."""

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

from bugnist_jax.models import planes
from bugnist_jax.models.pooling import check_pool_impl, relu_max_pool

CONV_IMPLS = {"xla": lax.conv_general_dilated, "planes": planes.conv_general_dilated}


def resolve_conv_impl(conv_impl: str) -> str:
  """'auto' -> 'planes' on CPU, 'xla' on GPU/TPU; a valid name -> itself; else ValueError."""
  if conv_impl == "auto":
    return "planes" if jax.default_backend() == "cpu" else "xla"
  if conv_impl not in CONV_IMPLS:
    valid = ", ".join(["auto", *CONV_IMPLS])
    raise ValueError(f"unknown conv impl {conv_impl!r}; valid: {valid}")
  return conv_impl


class ConvBlock(nnx.Module):
  """Conv (k, 'SAME') -> optional BatchNorm -> ReLU -> optional max pool, on [B, *spatial, C].

  conv_impl: 'xla' is lax.conv_general_dilated (best on GPU/TPU); 'planes' (`planes.py`)
  computes it with 2D convolutions and matmuls, several times faster on CPU; 'auto' picks by
  backend. pool_impl (`pooling.py`): 'argmax' fuses bias, ReLU and pool with a cheap gradient,
  so with it `block.conv(x)` alone leaves out the bias (`block(x)` does not). Same parameters and
  function either way.
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
    pool_impl: str = "argmax",
    conv_impl: str = "auto",
    dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    conv_impl = resolve_conv_impl(conv_impl)
    check_pool_impl(pool_impl)
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
    # The argmax pool adds the bias itself: its gradient there sums 8x fewer numbers than XLA's
    # (which, on CPU, was the slowest op of a train step). Same parameters, same function.
    self.bias_in_pool = self.conv.use_bias and bool(pool) and pool_impl == "argmax"
    if self.bias_in_pool:
      self.conv.use_bias = False

  def __call__(self, x: jax.Array) -> jax.Array:
    x = self.conv(x)
    if self.norm is not None:
      x = self.norm(x)
    if self.pool:
      bias = self.conv.bias[...] if self.bias_in_pool else None
      return relu_max_pool(x, self.pool, self.pool_impl, bias=bias)
    return nnx.relu(x)


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
