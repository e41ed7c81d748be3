"""The three small 2D CNNs of the Caltech-101 study (architectures 1, 2 and 3).

Input [B, 224, 224, 3] channels-last. Every conv is 'SAME' with a ReLU, every pool a 3x3
stride-2 'VALID' max pool (overlapping, as Keras' MaxPooling2D((3, 3), strides=2)):

  arch 1: conv1 11x11/4 8 -> pool1 -> conv2 5x5 16 -> pool2 -> dense1 128 -> logits 5
  arch 2: arch 1 + conv3 3x3 32 -> pool3 before dense1
  arch 3: arch 1 + conv3 3x3 32 -> conv4 3x3 64 -> pool4 before dense1

Shapes at 224x224: conv1 56x56x8, pool1 27x27x8, conv2 27x27x16, pool2 13x13x16, conv3
13x13x32, pool3 6x6x32, conv4 13x13x64, pool4 6x6x64. Parameters: 2912, 3216, 4640, 18496 for
the convs; dense1 346240 (arch 1), 147584 (arch 2), 295040 (arch 3); logits 645.

Our reading of the study's table 3: it lists the last MaxPooling's output as 13x13x64, yet its
Flatten as 2304 and dense1 as 295040 parameters = (2304 + 1) * 128, and 2304 = 6 * 6 * 64. Only a
3x3 stride-2 pool (13 -> 6) fits the flatten size and the parameter count, so arch 3 uses the
same pool as the others and we take the 13x13x64 in the table for a typo.
"""

import math
from collections.abc import Sequence

import jax.numpy as jnp
from flax import nnx

from bugnist_jax.models.contract import apply_ops, window
from bugnist_jax.models.layers import ConvBlock, DenseBlock, Logits
from bugnist_jax.models.pooling import MaxPool
from bugnist_jax.models.staged import StagedModel

# (kernel, filters) of the convs and after which of them a pool follows, per architecture.
ARCHITECTURES: dict[int, tuple[tuple[tuple[int, int], ...], tuple[int, ...]]] = {
  1: (((11, 8), (5, 16)), (1, 2)),
  2: (((11, 8), (5, 16), (3, 32)), (1, 2, 3)),
  3: (((11, 8), (5, 16), (3, 32), (3, 64)), (1, 2, 4)),
}


class CaltechCNN(StagedModel):
  """Architecture `arch` (1, 2 or 3) of the Caltech-101 study; see the module docstring.

  Stages: conv1, pool1, conv2, pool2, [conv3, pool3 | conv3, conv4, pool4], dense1, logits.
  convK outputs [B, H', W', filters] (after the ReLU), poolK the pooled map, dense1 [B, dense],
  logits [B, num_classes].
  """

  def __init__(
    self,
    *,
    arch: int = 2,
    input_shape: Sequence[int] = (224, 224),
    in_channels: int = 3,
    num_classes: int = 5,
    dense: int = 128,
    dropout: float = 0.0,
    pool_window: int = 3,
    pool_stride: int = 2,
    conv_impl: str = "auto",
    dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    if arch not in ARCHITECTURES:
      raise ValueError(f"arch: unknown {arch!r}; valid: {', '.join(map(str, ARCHITECTURES))}")
    if len(input_shape) != 2:
      raise ValueError(f"input_shape: CaltechCNN takes 2D images (H, W), got {input_shape}")
    convs, pools_after = ARCHITECTURES[arch]
    self.input_shape, self.in_channels = tuple(input_shape), int(in_channels)
    names, size, width = [], tuple(input_shape), in_channels
    for i, (kernel, filters) in enumerate(convs, start=1):
      stride = 4 if i == 1 else 1  # only the stem subsamples
      unpooled = dict(ndim=2, pool=None, conv_impl=conv_impl, dtype=dtype, rngs=rngs)
      setattr(
        self, f"conv{i}", ConvBlock(width, filters, kernel=kernel, strides=stride, **unpooled)
      )
      names.append(f"conv{i}")
      size, width = apply_ops(size, [window(kernel, stride, "SAME", 2)]), filters
      if i in pools_after:
        setattr(self, f"pool{i}", MaxPool(pool_window, pool_stride, "VALID"))
        names.append(f"pool{i}")
        size = apply_ops(size, [window(pool_window, pool_stride, "VALID", 2)])
    flat = math.prod(size) * width
    if flat <= 0 or min(size) <= 0:
      raise ValueError(f"input_shape {tuple(input_shape)} is too small for architecture {arch}")
    self.dense1 = DenseBlock(flat, dense, dropout=dropout, dtype=dtype, rngs=rngs)
    self.logits = Logits(dense, num_classes, dtype=dtype, rngs=rngs)
    self.layer_names = (*names, "dense1", "logits")
    self.arch = arch
