"""LeNet-5 as Fioresi and Petkovic train it (their `DFC_LeNet_5`), with optional normalisation.

Input [B, 32, 32, C] channels-last (any rank works: the convs and pools follow the input's).
tanh activations, average pooling, 'VALID' convolutions, a plain 6 -> 16 c3 (no sparse
connection table), dropout 0.2 after c1, c3 and c5 as in their code:

  c1 conv 5x5 C->6 [-> norm] -> dropout -> tanh     [B, 28, 28, 6]
  s2 avg pool 2/2                                    [B, 14, 14, 6]
  c3 conv 5x5 6->16 [-> norm] -> dropout -> tanh    [B, 10, 10, 16]
  s4 avg pool 2/2                                    [B, 5, 5, 16]
  c5 conv 5x5 16->120 -> dropout -> tanh             [B, 1, 1, 120]
  f6 linear 120->84 -> tanh                          [B, 84]
  logits linear 84->K                                [B, K]

61,706 parameters for C = 1, K = 10. `norm='batch'` is their BN-LeNet (BatchNorm after c1 and
c3, torch's momentum 0.1 and eps 1e-5); `norm='instance'` their IN-LeNet (torch's
InstanceNorm2d: no affine parameters, no running statistics). Because c1 has no padding, each
of its outputs sums a full kernel, so x -> a x + b moves every c1 map by a per-channel
constant and scales it by a: instance normalisation undoes both, and IN-LeNet's logits do
not change under any positive-scale affine change of the input intensities.
"""

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from bugnist_jax.models.contract import FLAT, SPATIAL, Op, Padding, Stage, apply_ops
from bugnist_jax.models.layers import Conv, Logits, make_batch_norm
from bugnist_jax.models.pooling import AvgPool
from bugnist_jax.models.staged import StagedModel

NORMS = (None, "batch", "instance")


def make_norm(norm: str | None, features: int, *, dtype=jnp.float32, rngs: nnx.Rngs):
  """The normalisation layer `norm` names (None, 'batch' or 'instance') with torch's defaults."""
  if norm is None:
    return None
  if norm == "batch":
    return make_batch_norm(features, dtype, rngs)
  if norm == "instance":
    return nnx.InstanceNorm(
      features, epsilon=1e-5, use_scale=False, use_bias=False, dtype=dtype, rngs=rngs
    )
  raise ValueError(f"norm: unknown {norm!r}; valid: None, 'batch', 'instance'")


class TanhConv(Stage):
  """Conv -> optional norm -> dropout -> tanh on [B, *S, Cin] -> [B, *S', Cout] (the authors'
  order); LeNet's c1, c3, c5 and the learned precortical stages. With `show_filters` its
  kernel is among the filters look_inside draws."""

  kind = SPATIAL

  def __init__(
    self,
    in_features: int,
    out_features: int,
    *,
    ndim: int,
    kernel: int = 5,
    padding: Padding = "VALID",
    norm: str | None = None,
    dropout: float = 0.2,
    show_filters: bool = False,
    conv_impl: str = "auto",
    dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    self.show_filters = show_filters
    self.conv = Conv(
      in_features,
      out_features,
      kernel,
      ndim=ndim,
      padding=padding,
      conv_impl=conv_impl,
      dtype=dtype,
      rngs=rngs,
    )
    self.norm = make_norm(norm, out_features, dtype=dtype, rngs=rngs)
    self.dropout = nnx.Dropout(dropout, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    y = self.conv(x)
    if self.norm is not None:
      y = self.norm(y)
    return jnp.tanh(self.dropout(y))

  def rf_ops(self, ndim: int) -> list[Op]:
    return self.conv.rf_ops()

  def filters(self) -> dict[str, jax.Array]:
    return {"conv": self.conv.kernel[...]} if self.show_filters else {}


class TanhDense(Stage):
  """Flatten -> Linear -> tanh: [B, ...] -> [B, out_features] (LeNet's f6)."""

  kind = FLAT

  def __init__(self, in_features: int, out_features: int, *, dtype=jnp.float32, rngs: nnx.Rngs):
    self.linear = nnx.Linear(
      in_features, out_features, dtype=dtype, param_dtype=jnp.float32, rngs=rngs
    )

  def __call__(self, x: jax.Array) -> jax.Array:
    return jnp.tanh(self.linear(x.reshape(x.shape[0], -1)))


class LeNet5(StagedModel):
  """The authors' LeNet-5 (see the module docstring). Stages: c1, s2, c3, s4, c5, f6, logits.

  norm: None, 'batch' or 'instance', right after the c1 and c3 convolutions.
  dropout: after c1, c3 and c5 (0.2 in the authors' code).
  """

  def __init__(
    self,
    *,
    input_shape: Sequence[int] = (32, 32),
    in_channels: int = 1,
    num_classes: int = 10,
    norm: str | None = None,
    dropout: float = 0.2,
    conv_impl: str = "auto",
    dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    ndim = len(input_shape)
    self.input_shape, self.in_channels = tuple(int(s) for s in input_shape), int(in_channels)
    conv = dict(ndim=ndim, dropout=dropout, conv_impl=conv_impl, dtype=dtype, rngs=rngs)
    self.c1 = TanhConv(in_channels, 6, norm=norm, show_filters=True, **conv)
    self.s2 = AvgPool(2)
    self.c3 = TanhConv(6, 16, norm=norm, **conv)
    self.s4 = AvgPool(2)
    self.c5 = TanhConv(16, 120, **conv)
    self.layer_names = ("c1", "s2", "c3", "s4", "c5", "f6", "logits")
    ops = [op for name in self.layer_names[:5] for op in getattr(self, name).rf_ops(ndim)]
    size = apply_ops(self.input_shape, ops)
    if min(size) < 1:
      raise ValueError(f"input_shape {self.input_shape} is too small for LeNet-5 (needs >= 32)")
    self.f6 = TanhDense(math.prod(size) * 120, 84, dtype=dtype, rngs=rngs)
    self.logits = Logits(84, num_classes, dtype=dtype, rngs=rngs)
    self.norm = norm


__all__ = ["LeNet5", "NORMS", "TanhConv", "TanhDense", "make_norm"]
