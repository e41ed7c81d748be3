"""BugCNN3D: the 3D CNN of the BugNIST study (four conv+pool stages, two dense layers)."""

import math
from collections.abc import Sequence

import jax.numpy as jnp
from flax import nnx

from bugnist_jax.models.layers import ConvBlock, DenseBlock, Logits
from bugnist_jax.models.staged import StagedModel


class BugCNN3D(StagedModel):
  """Four stages of Conv3d(k=3) + ReLU + MaxPool(2), then two dense layers to the logits.

  Input [B, D, H, W, C] channels-last (D is the tube axis). With the default widths
  (16, 32, 64, 128) a 128x64x64 volume costs 3.63 GFLOP forward.
  conv='r2plus1d' factorises every 3x3x3 convolution into a (1, 3, 3) one to M channels,
  BatchNorm + ReLU, and a (3, 1, 1) one along D (`layers.Conv2Plus1D`, M as the paper: as many
  weights as the full convolution, plus the BatchNorm's); `blockN.conv` is then that module.
  With conv='full' (the default) the parameters are those of every earlier checkpoint.
  Stages: block1..block4 ([B, D/2^k, H/2^k, W/2^k, channels[k-1]]), dense1 [B, dense],
  logits [B, num_classes].
  """

  def __init__(
    self,
    *,
    input_shape: Sequence[int] = (128, 64, 64),
    in_channels: int = 1,
    num_classes: int = 12,
    channels: Sequence[int] = (16, 32, 64, 128),
    dense: int = 256,
    batch_norm: bool = False,
    dropout: float = 0.0,
    pool_impl: str = "argmax",
    conv: str = "full",
    conv_impl: str = "auto",
    dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    if len(channels) != 4:
      raise ValueError(f"channels: BugCNN3D has 4 stages, got {len(channels)} widths")
    widths = (in_channels, *channels)
    self.input_shape, self.in_channels = tuple(input_shape), int(in_channels)
    self.layer_names = ("block1", "block2", "block3", "block4", "dense1", "logits")
    same = dict(ndim=3, batch_norm=batch_norm, pool_impl=pool_impl, conv_impl=conv_impl)
    for i in range(4):
      setattr(
        self,
        f"block{i + 1}",
        ConvBlock(widths[i], widths[i + 1], conv=conv, dtype=dtype, rngs=rngs, **same),
      )
    flat = math.prod(s // 16 for s in input_shape) * channels[-1]
    if flat == 0:
      raise ValueError(f"input_shape {tuple(input_shape)} is too small for 4 poolings by 2")
    self.dense1 = DenseBlock(flat, dense, dropout=dropout, dtype=dtype, rngs=rngs)
    self.logits = Logits(dense, num_classes, dtype=dtype, rngs=rngs)
