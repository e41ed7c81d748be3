"""Building blocks shared by the 2D and 3D models: a convolution, conv blocks, dense layers.

`make_conv(..., conv=)` is the one place a model's convolution is chosen: `'full'` (`Conv`) or,
for 3D kernels that extend along D and in the plane, `'r2plus1d'` (`Conv2Plus1D`, the factorised
convolution of Tran et al. 2018).

Every block is a `contract.Stage`. Parameter names are those of `nnx.Conv`, `nnx.Linear` and
`nnx.BatchNorm` (`conv.kernel`, `conv.bias`, `norm.scale`, ...), so checkpoints written before
these classes existed still load.
"""

import os
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

from bugnist_jax.models import planes
from bugnist_jax.models.contract import FLAT, SPATIAL, Op, Padding, Stage, window
from bugnist_jax.models.pooling import ReluMaxPool, check_pool_impl

CONV_IMPLS = {"xla": lax.conv_general_dilated, "planes": planes.conv_general_dilated}


# What 'auto' resolves to when set: 'planes' is the fastest to run on CPU but several times
# slower to compile at tiny sizes than 'xla' (the same function), so the test suite sets 'xla'.
CONV_IMPL_ENV = "BUGNIST_CONV_IMPL"


def resolve_conv_impl(conv_impl: str) -> str:
  """'auto' -> $BUGNIST_CONV_IMPL when set, else 'planes' on CPU and 'xla' on GPU/TPU; a valid
  name -> itself; else ValueError naming the field (or the environment variable)."""
  if conv_impl == "auto":
    chosen = os.environ.get(CONV_IMPL_ENV)
    if not chosen:
      return "planes" if jax.default_backend() == "cpu" else "xla"
    if chosen not in CONV_IMPLS:
      raise ValueError(f"{CONV_IMPL_ENV}: unknown {chosen!r}; valid: {', '.join(CONV_IMPLS)}")
    return chosen
  if conv_impl not in CONV_IMPLS:
    valid = ", ".join(["auto", *CONV_IMPLS])
    raise ValueError(f"conv_impl: unknown {conv_impl!r}; valid: {valid}")
  return conv_impl


def _per_axis(value: int | Sequence[int], ndim: int) -> tuple[int, ...]:
  return (int(value),) * ndim if isinstance(value, int) else tuple(int(v) for v in value)


TORCH_MOMENTUM = 0.9  # flax's BatchNorm momentum for torch's 0.1
KAIMING = nnx.initializers.variance_scaling(2.0, "fan_out", "normal")  # torchvision's VGG, ResNet


def make_batch_norm(features: int, dtype, rngs: nnx.Rngs, momentum: float = TORCH_MOMENTUM):
  """nnx.BatchNorm over the last axis of [..., features] with float32 parameters and statistics
  (eps 1e-5, torch's and flax's default; default momentum torch's)."""
  return nnx.BatchNorm(features, momentum=momentum, dtype=dtype, param_dtype=jnp.float32, rngs=rngs)


class Conv(nnx.Conv):
  """`nnx.Conv` (same parameters and initialisation) whose convolution is `conv_impl`'s and
  which can also run without its bias (`convolve`), for ops that add the bias themselves.

  conv_impl: 'xla' is `lax.conv_general_dilated` (best on GPU/TPU); 'planes'
  (`models/planes.py`) computes 3D convolutions with 2D ones and 1x1 ones as matmuls, faster on
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


CONVS = ("full", "r2plus1d")


def check_conv(conv: str) -> None:
  """Raises ValueError naming the valid kinds unless `conv` is one."""
  if conv not in CONVS:
    raise ValueError(f"conv: unknown {conv!r}; valid: {', '.join(CONVS)}")


def midplanes(kernel: Sequence[int], cin: int, cout: int) -> int:
  """M of R(2+1)D for a (t, h, w) kernel: floor(t h w Cin Cout / (h w Cin + t Cout)), so the
  (1, h, w) and (t, 1, 1) convolutions have as many weights as the full one (the paper's)."""
  t, h, w = kernel
  return max(1, (t * h * w * cin * cout) // (h * w * cin + t * cout))


def _explicit_pads(padding: Padding, kernel: Sequence[int], strides: Sequence[int]):
  """Per-axis (lo, hi) pads; 'SAME' needs stride 1 (its pads then do not depend on the size)."""
  if not isinstance(padding, str):
    return tuple((int(lo), int(hi)) for lo, hi in padding)
  if padding == "VALID":
    return ((0, 0),) * len(kernel)
  if any(s != 1 for s in strides):
    raise ValueError("padding: give explicit (lo, hi) pairs for a strided R(2+1)D convolution")
  return tuple(((k - 1) // 2, k // 2) for k in kernel)


class Conv2Plus1D(nnx.Module):
  """R(2+1)D's factorised 3D convolution on [B, D, H, W, Cin] -> [B, D', H', W', Cout]:

  `spatial`, a (1, kh, kw) convolution to `mid` channels (stride (1, sh, sw), the in-plane
  pads), then `norm` (BatchNorm) and a ReLU, then `temporal`, a (kd, 1, 1) convolution along
  the tube axis D to Cout (stride (sd, 1, 1), the D pads), as torchvision's `Conv2Plus1D`. Only
  `temporal` has a bias (when `use_bias`); `bias` and `convolve` are those of `Conv`, so
  `ConvBlock` treats both alike. `mid` defaults to `midplanes(kernel, Cin, Cout)`.
  """

  def __init__(
    self,
    in_features: int,
    out_features: int,
    kernel_size: Sequence[int],
    *,
    strides: int | Sequence[int] = 1,
    padding: Padding = "SAME",
    mid: int | None = None,
    use_bias: bool = True,
    norm_momentum: float = 0.9,
    conv_impl: str = "auto",
    kernel_init: Callable | None = None,
    dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    (kd, kh, kw), (sd, sh, sw) = _per_axis(kernel_size, 3), _per_axis(strides, 3)
    pd, ph, pw = _explicit_pads(padding, (kd, kh, kw), (sd, sh, sw))
    mid = midplanes((kd, kh, kw), in_features, out_features) if mid is None else int(mid)
    kw_ = dict(ndim=3, conv_impl=conv_impl, kernel_init=kernel_init, dtype=dtype, rngs=rngs)
    self.spatial = Conv(
      in_features,
      mid,
      (1, kh, kw),
      strides=(1, sh, sw),
      padding=((0, 0), ph, pw),
      use_bias=False,
      **kw_,
    )
    self.norm = make_batch_norm(mid, dtype, rngs, norm_momentum)
    self.temporal = Conv(
      mid,
      out_features,
      (kd, 1, 1),
      strides=(sd, 1, 1),
      padding=(pd, (0, 0), (0, 0)),
      use_bias=use_bias,
      **kw_,
    )
    self.in_features, self.out_features, self.mid = in_features, out_features, mid

  @property
  def bias(self) -> nnx.Param | None:
    return self.temporal.bias

  def convolve(self, x: jax.Array) -> jax.Array:
    """Both convolutions without the temporal bias."""
    return self.temporal.convolve(nnx.relu(self.norm(self.spatial(x))))

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.temporal(nnx.relu(self.norm(self.spatial(x))))

  def rf_ops(self) -> list[Op]:
    return self.spatial.rf_ops() + self.temporal.rf_ops()


def make_conv(
  in_features: int,
  out_features: int,
  kernel: int | Sequence[int],
  *,
  ndim: int,
  conv: str = "full",
  strides: int | Sequence[int] = 1,
  padding: Padding = "SAME",
  use_bias: bool = True,
  mid: int | None = None,
  norm_momentum: float = 0.9,
  conv_impl: str = "auto",
  kernel_init: Callable | None = None,
  dtype=jnp.float32,
  rngs: nnx.Rngs,
) -> "Conv | Conv2Plus1D":
  """A `Conv`, or with conv='r2plus1d' a `Conv2Plus1D` where the kernel extends both along D and
  in the plane (1x1x1 and (1, k, k) kernels stay full: there is nothing to factorise)."""
  check_conv(conv)
  kernel = _per_axis(kernel, ndim)
  kw = dict(strides=strides, padding=padding, use_bias=use_bias, conv_impl=conv_impl)
  kw |= dict(kernel_init=kernel_init, dtype=dtype, rngs=rngs)
  if conv == "r2plus1d":
    if ndim != 3:
      raise ValueError(f"conv: 'r2plus1d' factorises 3D convolutions; this model is {ndim}D")
    if kernel[0] > 1 and max(kernel[1:]) > 1:
      return Conv2Plus1D(
        in_features, out_features, kernel, mid=mid, norm_momentum=norm_momentum, **kw
      )
  return Conv(in_features, out_features, kernel, ndim=ndim, **kw)


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
    strides: int | Sequence[int] = 1,
    padding: Padding = "SAME",
    pool: int | None = 2,
    batch_norm: bool = False,
    use_bias: bool | None = None,
    norm_momentum: float = 0.99,
    pool_impl: str = "argmax",
    conv: str = "full",
    mid: int | None = None,
    conv_impl: str = "auto",
    kernel_init: Callable | None = None,
    dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    check_pool_impl(pool_impl)
    self.conv = make_conv(
      in_features,
      out_features,
      kernel,
      ndim=ndim,
      conv=conv,
      strides=strides,
      padding=padding,
      use_bias=not batch_norm if use_bias is None else use_bias,
      mid=mid,
      norm_momentum=norm_momentum,
      conv_impl=conv_impl,
      kernel_init=kernel_init,
      dtype=dtype,
      rngs=rngs,
    )
    self.norm = make_batch_norm(out_features, dtype, rngs, norm_momentum) if batch_norm else None
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
    convolution, the argmax pool, a shape it has a fused path for (not R(2+1)D's pair)."""
    conv = self.conv
    return (
      getattr(conv, "conv_general_dilated", None) is planes.conv_general_dilated
      and self.pool.impl == "argmax"
      and all(s == 1 for s in conv.strides)
      and conv.feature_group_count == 1
      and planes.pools_in_conv(x)
    )

  def _conv_pool(self, x: jax.Array) -> jax.Array:
    conv = self.conv
    pads = conv.padding
    if isinstance(pads, str):
      pads = lax.padtype_to_pads(x.shape[1:-1], conv.kernel_size, conv.strides, pads)
    pads = tuple((int(lo), int(hi)) for lo, hi in pads)
    kernel, bias = conv.kernel[...].astype(conv.dtype), conv.bias[...]
    x = x.astype(conv.dtype)
    return planes.conv_pool(x, kernel, bias, pads, self.pool.window)

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
