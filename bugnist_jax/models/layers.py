"""Building blocks shared by the 2D and 3D models: a convolution, conv blocks, dense layers.

Every block is a `contract.Stage`. Parameter names are those of `nnx.Conv`, `nnx.Linear` and
`nnx.BatchNorm` (`conv.kernel`, `conv.bias`, `norm.scale`, ...), so checkpoints written before
these classes existed still load.
"""

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

from bugnist_jax.models import planes
from bugnist_jax.models.contract import FLAT, SPATIAL, Op, Padding, Stage, window
from bugnist_jax.models.pooling import ReluMaxPool, check_pool_impl, relu_max_pool

CONV_IMPLS = {"xla": lax.conv_general_dilated, "planes": planes.conv_general_dilated}


def resolve_conv_impl(conv_impl: str) -> str:
  """'auto' -> 'planes' on CPU, 'xla' on GPU/TPU; a valid name -> itself; else ValueError."""
  if conv_impl == "auto":
    return "planes" if jax.default_backend() == "cpu" else "xla"
  if conv_impl not in CONV_IMPLS:
    valid = ", ".join(["auto", *CONV_IMPLS])
    raise ValueError(f"conv_impl: unknown {conv_impl!r}; valid: {valid}")
  return conv_impl


def _per_axis(value: int | Sequence[int], ndim: int) -> tuple[int, ...]:
  return (int(value),) * ndim if isinstance(value, int) else tuple(int(v) for v in value)


class Conv(nnx.Conv):
  """`nnx.Conv` (same parameters and initialisation) whose convolution is `conv_impl`'s and
  which can also run without its bias (`convolve`), for ops that add the bias themselves.

  conv_impl: 'xla' is `lax.conv_general_dilated` (best on GPU/TPU); 'planes'
  (`models/planes.py`) computes stride-1 3D convolutions with 2D ones, several times faster on
  CPU; 'auto' picks by backend. Same function either way.
  """

  def __init__(
    self,
    in_features: int,
    out_features: int,
    kernel_size: int | Sequence[int],
    *,
    ndim: int,
    strides: int | Sequence[int] = 1,
    padding: Padding = "SAME",
    feature_group_count: int = 1,
    use_bias: bool = True,
    conv_impl: str = "auto",
    kernel_init: Callable | None = None,
    dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    extra = {} if kernel_init is None else {"kernel_init": kernel_init}
    super().__init__(
      in_features,
      out_features,
      kernel_size=_per_axis(kernel_size, ndim),
      strides=_per_axis(strides, ndim),
      padding=padding,
      use_bias=use_bias,
      feature_group_count=feature_group_count,
      dtype=dtype,
      param_dtype=jnp.float32,
      conv_general_dilated=CONV_IMPLS[resolve_conv_impl(conv_impl)],
      rngs=rngs,
      **extra,
    )

  def convolve(self, x: jax.Array) -> jax.Array:
    """The convolution without its bias: [B, *S, Cin] -> [B, *S', Cout]."""
    n = x.ndim - 2
    pads = self.padding if isinstance(self.padding, str) else tuple(map(tuple, self.padding))
    numbers = lax.conv_dimension_numbers(
      x.shape,
      self.kernel.shape,
      ("N" + "DHW"[3 - n :] + "C", "DHW"[3 - n :] + "IO", "N" + "DHW"[3 - n :] + "C"),
    )
    return self.conv_general_dilated(
      x.astype(self.dtype),
      self.kernel[...].astype(self.dtype),
      self.strides,
      pads,
      dimension_numbers=numbers,
      feature_group_count=self.feature_group_count,
    )

  def __call__(self, x: jax.Array) -> jax.Array:
    y = self.convolve(x)
    return y if self.bias is None else y + self.bias[...].astype(y.dtype)

  def rf_ops(self) -> list[Op]:
    return [window(self.kernel_size, self.strides, self.padding, len(self.kernel_size))]


def _argmax_relu_pool(y: jax.Array, window: int, bias: jax.Array) -> jax.Array:
  """What `ConvBlock` runs after its convolution with the argmax pool (one function object,
  so `planes.conv_pool`'s static argument hashes the same every call)."""
  return relu_max_pool(y, window, "argmax", bias=bias)


class ConvBlock(Stage):
  """Conv -> optional BatchNorm -> ReLU -> optional max pool, on [B, *spatial, C].

  The conv has a bias unless batch_norm (use_bias overrides: torchvision's VGG-BN keeps it).
  With a non-overlapping pool and pool_impl='argmax', bias, ReLU and pool run as one op
  (`pooling.ReluMaxPool`) with a cheap gradient; `block.conv(x)` is the full convolution
  (bias included) either way.
  """

  kind = SPATIAL

  def __init__(
    self,
    in_features: int,
    out_features: int,
    *,
    ndim: int,
    kernel: int | Sequence[int] = 3,
    strides: int = 1,
    padding: Padding = "SAME",
    pool: int | None = 2,
    batch_norm: bool = False,
    use_bias: bool | None = None,
    norm_momentum: float = 0.99,
    pool_impl: str = "argmax",
    conv_impl: str = "auto",
    kernel_init: Callable | None = None,
    dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    check_pool_impl(pool_impl)
    self.conv = Conv(
      in_features,
      out_features,
      kernel,
      ndim=ndim,
      strides=strides,
      padding=padding,
      use_bias=not batch_norm if use_bias is None else use_bias,
      conv_impl=conv_impl,
      kernel_init=kernel_init,
      dtype=dtype,
      rngs=rngs,
    )
    # torch's BatchNorm: eps 1e-5 (flax's default too); flax's momentum is torch's 1 - momentum.
    self.norm = (
      nnx.BatchNorm(
        out_features, momentum=norm_momentum, dtype=dtype, param_dtype=jnp.float32, rngs=rngs
      )
      if batch_norm
      else None
    )
    self.pool = ReluMaxPool(pool, pool_impl) if pool else None

  def __call__(self, x: jax.Array) -> jax.Array:
    if self.pool is not None and self.norm is None and self.conv.bias is not None:
      if self._pools_in_conv(x):
        return self._conv_pool(x)
      # The pool adds the bias after the max: its gradient then sums 2^ndim times fewer numbers.
      return self.pool(self.conv.convolve(x), bias=self.conv.bias[...])
    x = self.conv(x)
    if self.norm is not None:
      x = self.norm(x)
    return nnx.relu(x) if self.pool is None else self.pool(x)

  def _pools_in_conv(self, x: jax.Array) -> bool:
    """Inference can pool inside the convolution (`planes.conv_pool`): planes' stride-1
    convolution, the argmax pool, a shape it has a fused path for."""
    conv = self.conv
    return (
      conv.conv_general_dilated is planes.conv_general_dilated
      and self.pool.impl == "argmax"
      and all(s == 1 for s in conv.strides)
      and conv.feature_group_count == 1
      and planes.pools_in_conv(x, conv.kernel)
    )

  def _conv_pool(self, x: jax.Array) -> jax.Array:
    conv = self.conv
    pads = conv.padding
    if isinstance(pads, str):
      pads = lax.padtype_to_pads(x.shape[1:-1], conv.kernel_size, conv.strides, pads)
    pads = tuple((int(lo), int(hi)) for lo, hi in pads)
    kernel, bias = conv.kernel[...].astype(conv.dtype), conv.bias[...]
    x = x.astype(conv.dtype)
    return planes.conv_pool(x, kernel, bias, pads, self.pool.window, _argmax_relu_pool)

  def rf_ops(self, ndim: int) -> list[Op]:
    ops = self.conv.rf_ops()
    if self.pool is not None:
      ops.append(window(self.pool.window, self.pool.window, "VALID", ndim))
    return ops


class DenseBlock(Stage):
  """Flatten (if needed) -> Linear -> ReLU -> Dropout: [B, ...] -> [B, out_features]."""

  kind = FLAT

  def __init__(self, in_features, out_features, *, dropout=0.0, dtype=jnp.float32, rngs):
    self.linear = nnx.Linear(
      in_features, out_features, dtype=dtype, param_dtype=jnp.float32, rngs=rngs
    )
    self.dropout = nnx.Dropout(dropout, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    x = x.reshape(x.shape[0], -1)
    return self.dropout(nnx.relu(self.linear(x)))


class Logits(Stage):
  """Final Linear layer: [B, ...] -> [B, num_classes], always float32 for a stable loss."""

  kind = FLAT

  def __init__(self, in_features, num_classes, *, dtype=jnp.float32, rngs):
    self.linear = nnx.Linear(
      in_features, num_classes, dtype=dtype, param_dtype=jnp.float32, rngs=rngs
    )

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.linear(x.reshape(x.shape[0], -1)).astype(jnp.float32)
