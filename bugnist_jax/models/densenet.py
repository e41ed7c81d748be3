"""DenseNets for 2D [B, H, W, C] and 3D [B, D, H, W, C] inputs, as torchvision defines them.

Layout (torchvision's `densenet.py`): stem 7x7 stride 2 conv (no bias) + BatchNorm + ReLU, a
3x3 stride-2 max pool (padding 1); dense blocks of dense layers, each BN - ReLU - 1x1 conv to
bn_size x growth - BN - ReLU - 3x3 conv to growth, its output concatenated to its input; a
transition between blocks, BN - ReLU - 1x1 conv - 2x2 stride-2 average pool; then BN - ReLU,
global average pool, Linear. Batch norm is torch's (eps 1e-5, momentum 0.1 = flax's 0.9); convs
start Kaiming-normal (fan_in, as torchvision's DenseNet). In 3D every kernel is cubic.

Variants (`variant=`): densenet121 (growth 32, 64 initial features, bn_size 4, blocks [6, 12,
24, 16], transitions halving the width) and covid (the DeepVisionVR paper's CovidDenseNet:
blocks [6, 10, 2, 1], transitions to 128, 256, 512 channels, 544 final features). `blocks`
overrides the counts, `width` scales every width (tests), and `conv='r2plus1d'` factorises the
3x3x3 convs of a 3D network (`layers.Conv2Plus1D`, the paper's M per convolution).

A transition pools before its 1x1 conv: both are linear and the conv is pointwise, so the
function is torchvision's, at a quarter (2D) or an eighth (3D) of the conv's FLOPs.

Stages: stem, pool, block1, transition1, ..., block4, norm (the final BN-ReLU), avgpool [B, C],
logits [B, num_classes]. A dense block is one stage; its receptive field is every layer's 3x3
in a row. Inputs need 32 voxels along every axis (the stem, the pool and three transitions
halve them).

Weights: `weights=` a LOCAL torchvision densenet121 state_dict (`models.torch_weights`; the
older `norm.1`-style key names are read too), `replace_head` and `inflate` as `resnet`.
"""

import re
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from bugnist_jax.models import torch_weights
from bugnist_jax.models.contract import SPATIAL, Op, Stage, apply_ops, window
from bugnist_jax.models.layers import TORCH_MOMENTUM, ConvBlock, Logits, make_batch_norm, make_conv
from bugnist_jax.models.pooling import GlobalAvgPool, MaxPool, avg_pool
from bugnist_jax.models.resnet import check_fields, pads, scaled
from bugnist_jax.models.staged import StagedModel

# (blocks, initial features, growth, transitions: None = halve, else their widths)
VARIANTS: dict[str, tuple[tuple[int, ...], int, int, tuple[int, ...] | None]] = {
  "densenet121": ((6, 12, 24, 16), 64, 32, None),
  "covid": ((6, 10, 2, 1), 64, 32, (128, 256, 512)),
}
BN_SIZE = 4
KAIMING_IN = nnx.initializers.variance_scaling(2.0, "fan_in", "normal")


class DenseLayer(nnx.Module):
  """[B, *S, Cin] -> [B, *S, growth]: BN - ReLU - 1x1 conv - BN - ReLU - 3x3 conv."""

  def __init__(
    self, cin: int, growth: int, *, ndim: int, conv: str, conv_impl: str, dtype, rngs: nnx.Rngs
  ):
    kw = dict(ndim=ndim, use_bias=False, conv_impl=conv_impl, kernel_init=KAIMING_IN)
    kw |= dict(dtype=dtype, rngs=rngs)
    self.norm1 = make_batch_norm(cin, dtype, rngs)
    self.conv1 = make_conv(cin, BN_SIZE * growth, 1, padding="VALID", **kw)
    self.norm2 = make_batch_norm(BN_SIZE * growth, dtype, rngs)
    self.conv2 = make_conv(
      BN_SIZE * growth,
      growth,
      3,
      padding=pads(3, ndim),
      conv=conv,
      norm_momentum=TORCH_MOMENTUM,
      **kw,
    )

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.conv2(nnx.relu(self.norm2(self.conv1(nnx.relu(self.norm1(x))))))


class DenseNetBlock(Stage):
  """[B, *S, Cin] -> [B, *S, Cin + n growth]: each layer's output concatenated to its input."""

  kind = SPATIAL

  def __init__(
    self, cin: int, n: int, growth: int, *, ndim: int, conv: str, conv_impl: str, dtype, rngs
  ):
    kw = dict(ndim=ndim, conv=conv, conv_impl=conv_impl, dtype=dtype, rngs=rngs)
    self.layers = nnx.List([DenseLayer(cin + i * growth, growth, **kw) for i in range(n)])
    self.out_features = cin + n * growth

  def __call__(self, x: jax.Array) -> jax.Array:
    for layer in self.layers:
      x = jnp.concatenate([x, layer(x)], axis=-1)
    return x

  def rf_ops(self, ndim: int) -> list[Op]:
    return [op for layer in self.layers for op in layer.conv2.rf_ops()]


class Transition(Stage):
  """[B, *S, Cin] -> [B, *S // 2, Cout]: BN - ReLU - 2x2/2 average pool - 1x1 conv (the pool
  first: the same function as torchvision's conv-then-pool, see the module doc)."""

  kind = SPATIAL

  def __init__(self, cin: int, cout: int, *, ndim: int, conv_impl: str, dtype, rngs: nnx.Rngs):
    self.norm = make_batch_norm(cin, dtype, rngs)
    self.conv = make_conv(
      cin,
      cout,
      1,
      ndim=ndim,
      padding="VALID",
      use_bias=False,
      conv_impl=conv_impl,
      kernel_init=KAIMING_IN,
      dtype=dtype,
      rngs=rngs,
    )

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.conv(avg_pool(nnx.relu(self.norm(x)), 2))

  def rf_ops(self, ndim: int) -> list[Op]:
    return [window(2, 2, "VALID", ndim)]


class NormRelu(Stage):
  """The final BatchNorm + ReLU on [B, *S, C] (torchvision's norm5 and the ReLU after it)."""

  kind = SPATIAL

  def __init__(self, features, *, dtype, rngs):
    self.norm = make_batch_norm(features, dtype, rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    return nnx.relu(self.norm(x))

  def rf_ops(self, ndim: int) -> list[Op]:
    return []


class DenseNet(StagedModel):
  """A DenseNet of `variant` on [B, *input_shape, in_channels] (2D or 3D); see the module doc."""

  def __init__(
    self,
    *,
    variant: str = "densenet121",
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
    counts = check_fields(VARIANTS, variant, input_shape, conv, blocks, at=0)
    ndim, (_, init, growth, transitions) = len(input_shape), VARIANTS[variant]
    ops = [window(7, 2, pads(7, ndim), ndim), window(3, 2, pads(3, ndim), ndim)]
    smallest = apply_ops(input_shape, ops + [window(2, 2, "VALID", ndim)] * 3)
    if min(smallest) < 1:
      raise ValueError(
        f"input_shape {tuple(input_shape)} is too small: DenseNet halves every axis 5 times "
        "(at least 32 along each)"
      )
    self.input_shape, self.in_channels = tuple(int(s) for s in input_shape), int(in_channels)
    self.variant = variant
    init, growth = scaled(width, init, growth)
    kw = dict(conv_impl=conv_impl, dtype=dtype, rngs=rngs)
    self.stem = ConvBlock(
      in_channels,
      init,
      ndim=ndim,
      kernel=7,
      strides=2,
      padding=pads(7, ndim),
      pool=None,
      batch_norm=True,
      norm_momentum=TORCH_MOMENTUM,
      kernel_init=KAIMING_IN,
      conv=conv,
      **kw,
    )
    self.pool = MaxPool(3, 2, pads(3, ndim))
    names, features = ["stem", "pool"], init
    for i, n in enumerate(counts, start=1):
      block = DenseNetBlock(features, n, growth, ndim=ndim, conv=conv, **kw)
      setattr(self, f"block{i}", block)
      names.append(f"block{i}")
      features = block.out_features
      if i < len(counts):
        out = features // 2 if transitions is None else scaled(width, transitions[i - 1])[0]
        setattr(self, f"transition{i}", Transition(features, out, ndim=ndim, **kw))
        names.append(f"transition{i}")
        features = out
    self.norm = NormRelu(features, dtype=dtype, rngs=rngs)
    self.avgpool = GlobalAvgPool()
    self.logits = Logits(features, num_classes, dtype=dtype, rngs=rngs)
    self.layer_names = (*names, "norm", "avgpool", "logits")
    if weights:  # not read under nnx.eval_shape (restoring a checkpoint: its weights win)
      what = f"DenseNet {variant} ({ndim}D, blocks {counts}, growth {growth})"
      keys = torch_keys(self, load_head=not replace_head)
      torch_weights.load(self, weights, keys, what, inflate=inflate, rename=current_key)


# torchvision's own checkpoints name dense layers' parts `norm.1`, `conv.2`, ...
_LEGACY = re.compile(
  r"^(.*denselayer\d+\.(?:norm|relu|conv))\."
  r"([12]\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$"
)


def current_key(key: str) -> str:
  """A densenet state_dict key in today's torchvision names (`norm.1` -> `norm1`)."""
  match = _LEGACY.match(key)
  return match.group(1) + match.group(2) if match else key


def torch_keys(model: DenseNet, load_head: bool = True) -> torch_weights.KeyMap:
  """torchvision state_dict key -> (our parameter, kind) for `model`."""
  tw = torch_weights
  keys = tw.conv_keys("features.conv0", model.stem.conv)
  keys |= tw.norm_keys("features.norm0", model.stem.norm)
  for name in model.layer_names:
    stage = getattr(model, name)
    if name.startswith("block"):
      for j, layer in enumerate(stage.layers, start=1):
        prefix = f"features.denseblock{name[5:]}.denselayer{j}"
        for n in (1, 2):
          keys |= tw.norm_keys(f"{prefix}.norm{n}", getattr(layer, f"norm{n}"))
          keys |= tw.conv_keys(f"{prefix}.conv{n}", getattr(layer, f"conv{n}"))
    elif name.startswith("transition"):
      keys |= tw.norm_keys(f"features.{name}.norm", stage.norm)
      keys |= tw.conv_keys(f"features.{name}.conv", stage.conv)
  keys |= tw.norm_keys("features.norm5", model.norm.norm)
  return keys | tw.linear_keys("classifier", model.logits.linear, load_head)
