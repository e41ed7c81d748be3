"""ResNets for 2D [B, H, W, C] and 3D [B, D, H, W, C] inputs (the rank from `input_shape`), as
torchvision defines them, and torchvision's R(2+1)D-18.

Layout (torchvision's `resnet.py`): stem 7x7 stride 2 conv 64 (no bias) + BatchNorm + ReLU, a
3x3 stride-2 max pool (padding 1, -inf), four stages of residual blocks of widths 64, 128, 256,
512 (the first stride 1, the others stride 2), global average pool, Linear. A BasicBlock is
3x3 conv (stride) - BN - ReLU - 3x3 conv - BN, plus the shortcut, then ReLU; a Bottleneck
(v1.5: the stride on its 3x3) 1x1 - BN - ReLU - 3x3 (stride) - BN - ReLU - 1x1 (4x wider) - BN.
The shortcut is a 1x1 conv (stride) + BN where the shape changes, else the identity. Every
padding is explicit (1 for 3x3, 3 for 7x7, as torch) and batch norm is torch's (eps 1e-5,
momentum 0.1, i.e. flax's 0.9); convs start Kaiming-normal (fan_out). In 3D every kernel is
cubic and every stride isotropic: torchvision's 2D network with one more axis.

Variants (`variant=`): resnet18 (BasicBlock [2, 2, 2, 2]), resnet34 (BasicBlock [3, 4, 6, 3]),
resnet50 (Bottleneck [3, 4, 6, 3]), covid (the DeepVisionVR paper's CovidResNet: BasicBlock
[2, 1, 1, 1]) and r2plus1d_18 (3D only). `blocks` overrides the counts, `width` scales every
width (tests), `conv='r2plus1d'` factorises every kernel that extends along D and in the plane
(`layers.Conv2Plus1D`, with the paper's M per convolution; the 7x7x7 stem too).

r2plus1d_18 is torchvision's `video.r2plus1d_18` exactly (31,505,325 parameters with 3 channels
and 400 classes), which departs from the paper (Tran et al. 2018) in three places: M is computed
once per block, from its input and output widths, and used for both its convolutions (conv2 of
a downsampling block gets the M of conv1: 128 -> 128 gets 230, not 288); the stem is a (1, 7, 7)
conv to a hard-coded 45 channels, then a (3, 1, 1) one to 64 (the formula would give 83), and
there is no max pool; strides are along D too (the shortcut's 1x1x1 conv strides (2, 2, 2)).

Stages: stem, pool (not in r2plus1d_18), layer{i}_{j} (stage i = 1..4, block j from 0, as
torchvision's `layer{i}.{j}`), avgpool [B, C], logits [B, num_classes]. A residual block is one
stage; its receptive field is its main path's.

Weights: `weights=` a LOCAL torchvision state_dict (`models.torch_weights`), e.g. made once with
`torch.save(torchvision.models.resnet18(weights='IMAGENET1K_V1').state_dict(), 'resnet18.pth')`;
`replace_head` gives a fresh Linear for our classes, `inflate` loads 2D weights into the 3D
network (I3D-style).
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from bugnist_jax.models import torch_weights
from bugnist_jax.models.contract import SPATIAL, Op, Stage
from bugnist_jax.models.layers import (
  KAIMING,
  TORCH_MOMENTUM,
  ConvBlock,
  Logits,
  check_conv,
  make_batch_norm,
  make_conv,
  midplanes,
)
from bugnist_jax.models.pooling import GlobalAvgPool, MaxPool
from bugnist_jax.models.staged import StagedModel

VARIANTS: dict[str, tuple[str, tuple[int, ...]]] = {
  "resnet18": ("basic", (2, 2, 2, 2)),
  "resnet34": ("basic", (3, 4, 6, 3)),
  "resnet50": ("bottleneck", (3, 4, 6, 3)),
  "covid": ("basic", (2, 1, 1, 1)),
  "r2plus1d_18": ("basic", (2, 2, 2, 2)),
}
WIDTHS = (64, 128, 256, 512)
VIDEO_STEM = 45  # torchvision's R2Plus1dStem width


def pads(kernel: int, ndim: int) -> tuple[tuple[int, int], ...]:
  """torch's `padding=kernel // 2` on every axis."""
  return ((kernel // 2, kernel // 2),) * ndim


class Shortcut(nnx.Module):
  """torchvision's `downsample`: a 1x1 conv with the block's stride, then BatchNorm."""

  def __init__(
    self, cin: int, cout: int, *, ndim: int, stride: int, conv_impl: str, dtype, rngs: nnx.Rngs
  ):
    self.conv = make_conv(
      cin,
      cout,
      1,
      ndim=ndim,
      strides=stride,
      padding="VALID",
      use_bias=False,
      conv_impl=conv_impl,
      kernel_init=KAIMING,
      dtype=dtype,
      rngs=rngs,
    )
    self.norm = make_batch_norm(cout, dtype, rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.norm(self.conv(x))


class _Residual(Stage):
  """Shared by both blocks: `main(x) + shortcut(x)`, then ReLU; geometry of the main path."""

  kind = SPATIAL
  convs: tuple[str, ...] = ()

  def _shortcut(self, cin, cout, ndim, stride, conv_impl, dtype, rngs):
    if stride == 1 and cin == cout:
      return None
    return Shortcut(
      cin, cout, ndim=ndim, stride=stride, conv_impl=conv_impl, dtype=dtype, rngs=rngs
    )

  def __call__(self, x: jax.Array) -> jax.Array:
    identity = x if self.downsample is None else self.downsample(x)
    return nnx.relu(self.main(x) + identity)

  def rf_ops(self, ndim: int) -> list[Op]:
    return [op for name in self.convs for op in getattr(self, name).rf_ops()]


class BasicBlock(_Residual):
  """[B, *S, Cin] -> [B, *S / stride, planes]: 3x3 (stride) - BN - ReLU - 3x3 - BN, + shortcut.

  `mid` fixes the R(2+1)D width of both convs (torchvision's video blocks); None: per conv.
  """

  expansion = 1
  convs = ("conv1", "conv2")

  def __init__(self, cin: int, planes: int, *, ndim, stride, conv, mid, conv_impl, dtype, rngs):
    kw = dict(ndim=ndim, conv=conv, mid=mid, padding=pads(3, ndim), use_bias=False)
    kw |= dict(norm_momentum=TORCH_MOMENTUM, conv_impl=conv_impl, kernel_init=KAIMING)
    kw |= dict(dtype=dtype, rngs=rngs)
    self.conv1 = make_conv(cin, planes, 3, strides=stride, **kw)
    self.bn1 = make_batch_norm(planes, dtype, rngs)
    self.conv2 = make_conv(planes, planes, 3, **kw)
    self.bn2 = make_batch_norm(planes, dtype, rngs)
    self.downsample = self._shortcut(cin, planes, ndim, stride, conv_impl, dtype, rngs)

  def main(self, x: jax.Array) -> jax.Array:
    return self.bn2(self.conv2(nnx.relu(self.bn1(self.conv1(x)))))


class Bottleneck(_Residual):
  """[B, *S, Cin] -> [B, *S / stride, 4 planes]: 1x1 - BN - ReLU - 3x3 (stride) - BN - ReLU -
  1x1 - BN, + shortcut (torchvision's v1.5)."""

  expansion = 4
  convs = ("conv1", "conv2", "conv3")

  def __init__(self, cin: int, planes: int, *, ndim, stride, conv, mid, conv_impl, dtype, rngs):
    kw = dict(ndim=ndim, use_bias=False, conv_impl=conv_impl, kernel_init=KAIMING)
    kw |= dict(dtype=dtype, rngs=rngs)
    self.conv1 = make_conv(cin, planes, 1, padding="VALID", **kw)
    self.bn1 = make_batch_norm(planes, dtype, rngs)
    self.conv2 = make_conv(
      planes,
      planes,
      3,
      strides=stride,
      padding=pads(3, ndim),
      conv=conv,
      mid=mid,
      norm_momentum=TORCH_MOMENTUM,
      **kw,
    )
    self.bn2 = make_batch_norm(planes, dtype, rngs)
    self.conv3 = make_conv(planes, 4 * planes, 1, padding="VALID", **kw)
    self.bn3 = make_batch_norm(4 * planes, dtype, rngs)
    self.downsample = self._shortcut(cin, 4 * planes, ndim, stride, conv_impl, dtype, rngs)

  def main(self, x: jax.Array) -> jax.Array:
    x = nnx.relu(self.bn1(self.conv1(x)))
    return self.bn3(self.conv3(nnx.relu(self.bn2(self.conv2(x)))))


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


def check_fields(variants: dict, variant: str, input_shape, conv: str, blocks, at: int):
  """The fields both families share: ValueError naming the bad one. Returns the block counts,
  `blocks` or the variant's (`variants[variant][at]`)."""
  if variant not in variants:
    raise ValueError(f"variant: unknown {variant!r}; valid: {', '.join(variants)}")
  if len(input_shape) not in (2, 3):
    raise ValueError(f"input_shape: 2D (H, W) or 3D (D, H, W), got {tuple(input_shape)}")
  check_conv(conv)
  counts = tuple(int(b) for b in blocks) or variants[variant][at]
  if len(counts) != 4 or min(counts) < 1:
    raise ValueError(f"blocks: four stages of at least one block each, got {tuple(blocks)}")
  return counts


def scaled(width: float, *features: int) -> tuple[int, ...]:
  """Widths times `width` (at least 1 each); ValueError unless width > 0."""
  if not width > 0:
    raise ValueError(f"width: must be > 0, got {width}")
  return tuple(max(1, int(round(f * width))) for f in features)


class ResNet(StagedModel):
  """A ResNet of `variant` on [B, *input_shape, in_channels] (2D or 3D); see the module doc."""

  def __init__(
    self,
    *,
    variant: str = "resnet18",
    input_shape: Sequence[int] = (224, 224),
    in_channels: int = 3,
    num_classes: int = 1000,
    blocks: Sequence[int] = (),
    width: float = 1.0,
    conv: str = "full",
    weights: str = "",
    replace_head: bool = True,
    inflate: bool = False,
    conv_impl: str = "auto",
    dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    counts = check_fields(VARIANTS, variant, input_shape, conv, blocks, at=1)
    ndim, video, block = len(input_shape), variant == "r2plus1d_18", VARIANTS[variant][0]
    if video and ndim != 3:
      raise ValueError(
        f"input_shape: {variant} takes 3D (D, H, W) inputs, got {tuple(input_shape)}"
      )
    self.input_shape, self.in_channels = tuple(int(s) for s in input_shape), int(in_channels)
    self.variant, self.video = variant, video
    widths = scaled(width, *WIDTHS)
    conv = "r2plus1d" if video else conv
    kw = dict(conv_impl=conv_impl, dtype=dtype, rngs=rngs)
    stem = dict(pool=None, batch_norm=True, norm_momentum=TORCH_MOMENTUM, kernel_init=KAIMING, **kw)
    if video:  # torchvision's R2Plus1dStem: (1, 7, 7)/(1, 2, 2) to 45, BN, ReLU, (3, 1, 1)
      self.stem = ConvBlock(
        in_channels,
        widths[0],
        ndim=3,
        kernel=(3, 7, 7),
        strides=(1, 2, 2),
        padding=((1, 1), (3, 3), (3, 3)),
        conv=conv,
        mid=scaled(width, VIDEO_STEM)[0],
        **stem,
      )
      names = ["stem"]
    else:
      self.stem = ConvBlock(
        in_channels,
        widths[0],
        ndim=ndim,
        kernel=7,
        strides=2,
        padding=pads(7, ndim),
        conv=conv,
        **stem,
      )
      self.pool = MaxPool(3, 2, pads(3, ndim))
      names = ["stem", "pool"]
    cls, cin = BLOCKS[block], widths[0]
    for i, (planes, count) in enumerate(zip(widths, counts, strict=True), start=1):
      for j in range(count):
        stride = 2 if i > 1 and j == 0 else 1
        # torchvision's video blocks: one M from the block's (input, output) widths.
        mid = midplanes((3, 3, 3), cin, planes) if video else None
        stage = cls(cin, planes, ndim=ndim, stride=stride, conv=conv, mid=mid, **kw)
        setattr(self, f"layer{i}_{j}", stage)
        names.append(f"layer{i}_{j}")
        cin = planes * cls.expansion
    self.avgpool = GlobalAvgPool()
    self.logits = Logits(cin, num_classes, dtype=dtype, rngs=rngs)
    self.layer_names = (*names, "avgpool", "logits")
    if weights:  # not read under nnx.eval_shape (restoring a checkpoint: its weights win)
      what = f"ResNet {variant} ({ndim}D, blocks {counts}, widths {widths})"
      keys = torch_keys(self, load_head=not replace_head)
      torch_weights.load(self, weights, keys, what, inflate=inflate)


def torch_keys(model: ResNet, load_head: bool = True) -> torch_weights.KeyMap:
  """torchvision state_dict key -> (our parameter, kind): `resnet.py`'s names, or for
  r2plus1d_18 `video/resnet.py`'s (Sequential indices inside stem, conv1, conv2)."""
  tw = torch_weights
  if model.video:
    keys = tw.conv_keys("stem", model.stem.conv) | tw.norm_keys("stem.4", model.stem.norm)
  else:
    keys = tw.conv_keys("conv1", model.stem.conv) | tw.norm_keys("bn1", model.stem.norm)
  for name in model.layer_names:
    if not name.startswith("layer"):
      continue
    block, prefix = getattr(model, name), name.replace("_", ".")
    for conv in block.convs:
      n = conv[-1]
      if model.video:
        keys |= tw.conv_keys(f"{prefix}.conv{n}.0", getattr(block, conv))
        keys |= tw.norm_keys(f"{prefix}.conv{n}.1", getattr(block, f"bn{n}"))
      else:
        keys |= tw.conv_keys(f"{prefix}.conv{n}", getattr(block, conv))
        keys |= tw.norm_keys(f"{prefix}.bn{n}", getattr(block, f"bn{n}"))
    if block.downsample is not None:
      keys |= tw.conv_keys(f"{prefix}.downsample.0", block.downsample.conv)
      keys |= tw.norm_keys(f"{prefix}.downsample.1", block.downsample.norm)
  return keys | tw.linear_keys("fc", model.logits.linear, load_head)
