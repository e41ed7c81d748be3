"""PyTorch reference of BugCNN3D, written the way the studies' code is (NCDHW, eager).

Weights are copied from a Flax model, so both compute the same function
(`tests/test_torch_reference.py` checks logits and gradients). Torch and Captum are optional:
import this module only where torch is installed.
"""

import math
from collections.abc import Sequence

import numpy as np
import torch
from flax import nnx
from torch import nn


class TorchBugCNN3D(nn.Module):
  """Conv3d(k=3, pad 1) + ReLU + MaxPool3d(2) x 4, flatten (NCDHW order), dense, logits.

  Input [B, C, D, H, W] float32; output logits [B, num_classes].
  """

  def __init__(
    self,
    *,
    input_shape: Sequence[int] = (128, 64, 64),
    in_channels: int = 1,
    num_classes: int = 12,
    channels: Sequence[int] = (16, 32, 64, 128),
    dense: int = 256,
  ):
    super().__init__()
    widths = (in_channels, *channels)
    self.features = nn.Sequential(
      *(
        layer
        for i in range(4)
        for layer in (nn.Conv3d(widths[i], widths[i + 1], 3, padding=1), nn.ReLU(), nn.MaxPool3d(2))
      )
    )
    flat = math.prod(s // 16 for s in input_shape) * channels[-1]
    self.dense1 = nn.Linear(flat, dense)
    self.logits = nn.Linear(dense, num_classes)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    x = self.features(x).flatten(1)
    return self.logits(torch.relu(self.dense1(x)))


def _t(a) -> torch.Tensor:
  return torch.from_numpy(np.array(a, dtype=np.float32))


def from_flax(model: nnx.Module) -> TorchBugCNN3D:
  """A TorchBugCNN3D computing the same function as the Flax BugCNN3D `model` (no batch norm).

  Conv kernels [kd, kh, kw, Cin, Cout] become [Cout, Cin, kd, kh, kw]; the first dense
  kernel's rows are reordered from the channels-last flatten (d, h, w, c) to torch's (c, d, h, w).
  """
  blocks = [getattr(model, f"block{i}") for i in range(1, 5)]
  if any(b.norm is not None for b in blocks):
    raise NotImplementedError("from_flax: batch norm is not mirrored in the torch reference")
  channels = [b.conv.out_features for b in blocks]
  dense_in, dense = model.dense1.linear.kernel.shape
  spatial_flat = dense_in // channels[-1]
  # The input shape only matters through the flattened size; recover one that matches.
  ref = TorchBugCNN3D(
    input_shape=(16 * spatial_flat, 16, 16),
    in_channels=blocks[0].conv.in_features,
    num_classes=model.logits.linear.kernel.shape[1],
    channels=channels,
    dense=dense,
  )
  convs = [m for m in ref.features if isinstance(m, nn.Conv3d)]
  with torch.no_grad():
    for conv, block in zip(convs, blocks, strict=True):
      conv.weight.copy_(_t(block.conv.kernel[...]).permute(4, 3, 0, 1, 2))
      conv.bias.copy_(_t(block.conv.bias[...]))
    ref.dense1.weight.copy_(_dense1_weight(model, channels[-1]))
    ref.dense1.bias.copy_(_t(model.dense1.linear.bias[...]))
    ref.logits.weight.copy_(_t(model.logits.linear.kernel[...]).T)
    ref.logits.bias.copy_(_t(model.logits.linear.bias[...]))
  return ref


def _dense1_weight(model: nnx.Module, channels: int) -> torch.Tensor:
  kernel = _t(model.dense1.linear.kernel[...])  # [S * C, dense], rows in (spatial, c) order
  spatial = kernel.shape[0] // channels
  return kernel.reshape(spatial, channels, -1).permute(2, 1, 0).reshape(kernel.shape[1], -1)


def smoothgrad_loop(
  model: nn.Module, x: torch.Tensor, target: int, *, num_samples: int, sigma: float
) -> torch.Tensor:
  """The study's SmoothGrad: `num_samples` forward+backward passes, one noisy copy each.

  x [1, C, D, H, W]; noise std is sigma * (max - min) of x. Returns the mean gradient, x's shape.
  """
  std = sigma * float(x.max() - x.min())
  total = torch.zeros_like(x)
  for _ in range(num_samples):
    noisy = (x + std * torch.randn_like(x)).requires_grad_(True)
    model(noisy)[0, target].backward()
    total += noisy.grad
  return total / num_samples


def smoothgrad_captum(
  model: nn.Module,
  x: torch.Tensor,
  target: int,
  *,
  num_samples: int,
  sigma: float,
  batch_size: int | None = None,
) -> torch.Tensor:
  """Captum's NoiseTunnel(Saliency) SmoothGrad, `batch_size` noisy copies per pass (batched)."""
  from captum.attr import NoiseTunnel, Saliency

  std = sigma * float(x.max() - x.min())
  return NoiseTunnel(Saliency(model)).attribute(
    x,
    nt_type="smoothgrad",
    nt_samples=num_samples,
    nt_samples_batch_size=batch_size,
    stdevs=std,
    target=target,
    abs=False,
  )
