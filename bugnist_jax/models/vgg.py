"""VGG19 (optionally with batch norm) in torchvision's layout, loading torchvision's weights.

Weights come from a LOCAL file given by path (never downloaded at run time): a torchvision
`vgg19` / `vgg19_bn` state_dict saved with `torch.save` (`.pth`/`.pt`, read with
`torch.load(weights_only=True)`, which refuses pickled code) or a `.safetensors` file. Get one
once on a machine with internet, e.g.

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
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from flax import nnx

from bugnist_jax.errors import UserError
from bugnist_jax.models.layers import ConvBlock, DenseBlock, Logits
from bugnist_jax.models.pooling import AdaptiveAvgPool, MaxPool
from bugnist_jax.models.staged import StagedModel

GROUPS: tuple[tuple[int, int], ...] = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))
POOLED = 7  # spatial size after the adaptive average pool
_KAIMING = nnx.initializers.variance_scaling(2.0, "fan_out", "normal")


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
          norm_momentum=0.9,
          kernel_init=_KAIMING,
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
    elif not isinstance(self.fc1.linear.kernel[...], jax.core.Tracer):
      # Under nnx.eval_shape (restoring a checkpoint) the values are abstract: the weights
      # come from the checkpoint, so the file is not read (it may not even be there).
      load_torch_weights(self, weights, load_head=not replace_head)


def torch_key_map(model: VGG19, load_head: bool = True) -> dict[str, tuple[nnx.Param, str]]:
  """torchvision state_dict key -> (our parameter, conversion kind) for `model`."""
  keys, index = {}, 0
  for g, (_, n) in enumerate(GROUPS, start=1):
    for k in range(1, n + 1):
      stage = getattr(model, f"conv{g}_{k}")
      keys[f"features.{index}.weight"] = (stage.conv.kernel, "conv")
      keys[f"features.{index}.bias"] = (stage.conv.bias, "copy")
      if stage.norm is not None:
        bn = f"features.{index + 1}"
        keys[f"{bn}.weight"] = (stage.norm.scale, "copy")
        keys[f"{bn}.bias"] = (stage.norm.bias, "copy")
        keys[f"{bn}.running_mean"] = (stage.norm.mean, "copy")
        keys[f"{bn}.running_var"] = (stage.norm.var, "copy")
        keys[f"{bn}.num_batches_tracked"] = (None, "skip")
      index += 3 if stage.norm is not None else 2  # conv (, bn), relu
    index += 1  # the max pool
  linears = [("classifier.0", model.fc1.linear, "fc1"), ("classifier.3", model.fc2.linear, "dense")]
  linears.append(("classifier.6", model.logits.linear, "dense" if load_head else "skip"))
  for prefix, linear, kind in linears:
    keys[f"{prefix}.weight"] = (linear.kernel, kind)
    keys[f"{prefix}.bias"] = (linear.bias, "copy" if kind != "skip" else "skip")
  return keys


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """A state_dict as numpy arrays from `.safetensors` or a torch `.pth`/`.pt` (weights only)."""
  path = Path(path)
  if not path.is_file():
    raise UserError(f"config.model.weights: {path} does not exist")
  try:
    if path.suffix == ".safetensors":
      from safetensors.numpy import load_file

      return dict(load_file(str(path)))
    import torch  # only for .pth files; not a dependency of the rest of the package

    state = torch.load(str(path), map_location="cpu", weights_only=True)
  except ImportError as e:
    raise UserError(f"{path}: reading it needs {e.name} (pip install {e.name})") from None
  except Exception as e:  # torch raises UnpicklingError for pickled code, others for junk
    first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
    raise UserError(f"{path}: not a loadable weights-only state_dict ({first})") from None
  if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
    state = state["state_dict"]
  if not isinstance(state, dict):
    raise UserError(f"{path}: expected a state_dict (dict of tensors), got {type(state).__name__}")
  return {
    k: v.detach().float().numpy() if hasattr(v, "detach") else np.asarray(v)
    for k, v in state.items()
  }


def _convert(value: np.ndarray, kind: str, target_shape: tuple[int, ...]) -> np.ndarray:
  if kind == "conv":  # OIHW -> HWIO
    return value.transpose(2, 3, 1, 0)
  if kind == "fc1":  # [out, C*7*7] (C, 7, 7 flatten) -> [7*7*C, out] (7, 7, C flatten)
    c = target_shape[0] // (POOLED * POOLED)
    w = value.T.reshape(c, POOLED, POOLED, -1).transpose(1, 2, 0, 3)
    return w.reshape(target_shape)
  if kind == "dense":
    return value.T
  return value


def load_torch_weights(model: VGG19, path: str | os.PathLike, load_head: bool = False) -> None:
  """Loads a torchvision vgg19(_bn) state_dict into `model` in place.

  Missing, unexpected or mis-shaped keys raise one UserError naming them (and the file).
  """
  state = read_state_dict(path)
  keys = torch_key_map(model, load_head)
  missing = [k for k in keys if k not in state]
  unexpected = [k for k in state if k not in keys]
  problems = []
  if missing:
    problems.append(f"missing keys {', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}")
  if unexpected:
    more = " ..." if len(unexpected) > 6 else ""
    problems.append(f"unexpected keys {', '.join(unexpected[:6])}{more}")
  converted = {}
  for key, (param, kind) in keys.items():
    if kind == "skip" or key not in state:
      continue
    target = tuple(param[...].shape)
    value = np.asarray(state[key], np.float32)
    expected_torch = _torch_shape(kind, target)
    if value.shape != expected_torch:
      problems.append(f"{key} has shape {value.shape}, expected {expected_torch}")
      continue
    converted[key] = _convert(value, kind, target)
  if problems:
    raise UserError(
      f"{path}: does not match VGG19 (batch_norm={model.batch_norm}): " + "; ".join(problems)
    )
  for key, value in converted.items():
    keys[key][0][...] = jnp.asarray(value)


def _torch_shape(kind: str, ours: tuple[int, ...]) -> tuple[int, ...]:
  """The torch tensor shape that converts to our shape `ours`."""
  if kind == "conv":
    h, w, i, o = ours
    return (o, i, h, w)
  if kind in ("fc1", "dense"):
    return ours[::-1]
  return ours
