"""VGG19 (optionally with batch norm) in torchvision's layout, loading torchvision's weights.

Weights come from a LOCAL file given by path (never downloaded at run time): a torchvision
`vgg19` / `vgg19_bn` state_dict (`.pth` or `.safetensors`, read by `models.torch_weights`, the
loader every family shares). Get one once on a machine with internet, e.g.

  python -c "import torch, torchvision; torch.save(torchvision.models.vgg19(
      weights='IMAGENET1K_V1').state_dict(), 'vgg19.pth')"

Layout (torchvision's `features.N`, `classifier.0/3/6` keys): 16 convs 3x3 'SAME' + ReLU in
five groups (64, 64 | 128, 128 | 256 x4 | 512 x4 | 512 x4), a 2x2 max pool after each group,
an adaptive average pool to 7x7 (torch's AdaptiveAvgPool2d; identity at 224x224), then
Linear 25088->4096, ReLU, Dropout, Linear 4096->4096, ReLU, Dropout, Linear 4096->classes.
Stages: conv1_1 .. conv5_4, pool1 .. pool5, avgpool, fc1, fc2, logits.

Conversions: conv kernels OIHW -> HWIO; Linear weights [out, in] -> [in, out]; fc1's rows
permuted from torch's NCHW flatten order (C, 7, 7) to our channels-last (7, 7, C). The last
Linear (the ImageNet head) is replaced by a fresh one for the new classes unless
`replace_head=False`. `width` < 1 scales every conv's channel count and `hidden` sets the
classifier's width (for fast tests only: real files need width=1, hidden=4096).
"""

import os
from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np
from absl import logging
from flax import nnx

from bugnist_jax.models import torch_weights
from bugnist_jax.models.layers import KAIMING, TORCH_MOMENTUM, ConvBlock, DenseBlock, Logits
from bugnist_jax.models.pooling import AdaptiveAvgPool, MaxPool
from bugnist_jax.models.staged import StagedModel

GROUPS: tuple[tuple[int, int], ...] = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))
POOLED = 7  # spatial size after the adaptive average pool


class VGG19(StagedModel):
  """VGG19 / VGG19-BN on [B, H, W, 3] (H, W >= 32), weights optionally loaded from `weights`."""

  def __init__(
    self,
    *,
    input_shape: Sequence[int] = (224, 224),
    in_channels: int = 3,
    num_classes: int = 1000,
    batch_norm: bool = False,
    hidden: int = 4096,
    dropout: float = 0.5,
    width: float = 1.0,
    weights: str = "",
    replace_head: bool = True,
    conv_impl: str = "auto",
    dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    if len(input_shape) != 2 or min(input_shape) < 32:
      raise ValueError(f"input_shape: VGG19 needs 2D images of at least 32x32, got {input_shape}")
    names, cin = [], in_channels
    self.input_shape, self.in_channels = tuple(input_shape), int(in_channels)
    for g, (channels, n) in enumerate(GROUPS, start=1):
      cout = max(1, int(round(channels * width)))
      for k in range(1, n + 1):
        # torchvision: every conv has a bias (also with batch norm), kaiming-normal fan_out
        # init (random features keep their scale through 16 layers), BN momentum 0.1.
        block = ConvBlock(
          cin,
          cout,
          ndim=2,
          pool=None,
          batch_norm=batch_norm,
          use_bias=True,
          norm_momentum=TORCH_MOMENTUM,
          kernel_init=KAIMING,
          conv_impl=conv_impl,
          dtype=dtype,
          rngs=rngs,
        )
        setattr(self, f"conv{g}_{k}", block)
        names.append(f"conv{g}_{k}")
        cin = cout
      setattr(self, f"pool{g}", MaxPool(2, 2))
      names.append(f"pool{g}")
    self.avgpool = AdaptiveAvgPool(POOLED)
    self.fc1 = DenseBlock(POOLED * POOLED * cin, hidden, dropout=dropout, dtype=dtype, rngs=rngs)
    self.fc2 = DenseBlock(hidden, hidden, dropout=dropout, dtype=dtype, rngs=rngs)
    self.logits = Logits(hidden, num_classes, dtype=dtype, rngs=rngs)
    self.layer_names = (*names, "avgpool", "fc1", "fc2", "logits")
    self.batch_norm = batch_norm
    if not weights:
      logging.warning(
        "VGG19: config.model.weights is empty: RANDOM initialisation, not ImageNet weights "
        "(fine for a demo; set it to a torchvision vgg19 .pth/.safetensors for transfer learning)"
      )
    else:  # not read under nnx.eval_shape (restoring a checkpoint: its weights win)
      load_torch_weights(self, weights, load_head=not replace_head)


def _fc1_to_ours(value: np.ndarray, ours: tuple[int, ...]) -> np.ndarray:
  """[out, C*7*7] (torch's C, 7, 7 flatten) -> [7*7*C, out] (our 7, 7, C flatten)."""
  c = ours[0] // (POOLED * POOLED)
  return value.T.reshape(c, POOLED, POOLED, -1).transpose(1, 2, 0, 3).reshape(ours)


FC1 = torch_weights.Conversion(_fc1_to_ours, lambda ours: ours[::-1])


def torch_key_map(model: VGG19, load_head: bool = True) -> torch_weights.KeyMap:
  """torchvision state_dict key -> (our parameter, conversion kind) for `model`."""
  keys, index = {}, 0
  for g, (_, n) in enumerate(GROUPS, start=1):
    for k in range(1, n + 1):
      stage = getattr(model, f"conv{g}_{k}")
      keys |= torch_weights.conv_keys(f"features.{index}", stage.conv)
      if stage.norm is not None:
        keys |= torch_weights.norm_keys(f"features.{index + 1}", stage.norm)
      index += 3 if stage.norm is not None else 2  # conv (, bn), relu
    index += 1  # the max pool
  keys |= {"classifier.0.weight": (model.fc1.linear.kernel, FC1)}
  keys |= {"classifier.0.bias": (model.fc1.linear.bias, "copy")}
  keys |= torch_weights.linear_keys("classifier.3", model.fc2.linear)
  return keys | torch_weights.linear_keys("classifier.6", model.logits.linear, load_head)


def load_torch_weights(model: VGG19, path: str | os.PathLike, load_head: bool = False) -> None:
  """Loads a torchvision vgg19(_bn) state_dict into `model` in place (`torch_weights.load`:
  missing, unexpected or mis-shaped keys raise one UserError naming them and the file)."""
  what = f"VGG19 (batch_norm={model.batch_norm})"
  torch_weights.load(model, path, torch_key_map(model, load_head), what)
