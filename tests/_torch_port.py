"""Shared by the parity tests: the tiny JAX CNNs of test_saliency.py ported to PyTorch, layout
converters, the float64 comparison, and the import of peers that import torchvision.

The JAX models are loaded by path, so this works whatever the test directory's import mode.
Weights are ported to PyTorch as NCHW/NCDHW, kernels HWIO -> OIHW, with the flatten in
channels-last order so the dense weights match.
"""

import importlib
import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch

_spec = importlib.util.spec_from_file_location(
  "_saliency_models", Path(__file__).with_name("test_saliency.py")
)
models = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(models)

STUBS = Path(__file__).with_name("peer_stubs")


def import_peer(name: str):
  """Imports a peer package (`pytorch_grad_cam`, `zennit`, `quantus`, which imports zennit)
  that imports torchvision at module level. Without a working torchvision (none installed,
  or PyPI's wheel that fails beside the local CPU torch), the stand-in in tests/peer_stubs
  goes on sys.path first (its README)."""
  try:
    import torchvision  # noqa: F401
  except Exception:  # ImportError, or RuntimeError "operator torchvision::nms does not exist"
    for module in [m for m in sys.modules if m.split(".")[0] == "torchvision"]:
      del sys.modules[module]
    sys.path.insert(0, str(STUBS))
  return importlib.import_module(name)


class TorchCNN(torch.nn.Module):
  """The test CNN in PyTorch: conv relu maxpool conv relu (CAM layer: relu2) | dense."""

  def __init__(self, params: dict):
    super().__init__()
    p = {k: np.asarray(v) for k, v in params.items()}
    nd = p["k1"].ndim - 2
    conv = torch.nn.Conv2d if nd == 2 else torch.nn.Conv3d
    pool = torch.nn.MaxPool2d if nd == 2 else torch.nn.MaxPool3d
    self.conv1 = conv(p["k1"].shape[-2], p["k1"].shape[-1], 3, padding=1)
    self.conv2 = conv(p["k2"].shape[-2], p["k2"].shape[-1], 3, padding=1)
    self.relu1, self.relu2, self.pool = torch.nn.ReLU(), torch.nn.ReLU(), pool(2)
    self.dense = torch.nn.Linear(*p["w"].shape)
    self.double().eval()  # before copying, so the weights are not rounded to float32
    with torch.no_grad():
      for layer, k, b in ((self.conv1, "k1", "b1"), (self.conv2, "k2", "b2")):
        layer.weight.copy_(torch_kernel(p[k]))
        layer.bias.copy_(torch.from_numpy(p[b].copy()))
      self.dense.weight.copy_(torch.from_numpy(p["w"].T.copy()))
      self.dense.bias.copy_(torch.from_numpy(p["b"].copy()))

  def forward(self, x):
    x = self.relu2(self.conv2(self.pool(self.relu1(self.conv1(x)))))
    return self.dense(torch.movedim(x, 1, -1).flatten(1))  # channels-last flatten


def torch_kernel(kernel: np.ndarray) -> "torch.Tensor":
  """HWIO / DHWIO kernel -> OIHW / OIDHW tensor."""
  nd = kernel.ndim - 2
  return torch.from_numpy(np.asarray(kernel).transpose((nd + 1, nd, *range(nd))).copy())


def to_torch(x) -> "torch.Tensor":
  """Channels-last JAX array -> channels-first float64 tensor."""
  return torch.from_numpy(np.moveaxis(np.asarray(x), -1, 1).copy())


def to_jax_layout(t) -> np.ndarray:
  """Channels-first tensor -> channels-last numpy array."""
  return np.moveaxis(t.detach().numpy(), 1, -1)


def close(ours, theirs, rtol=1e-7):
  """Float64 agreement, with an absolute slack scaled to the map (sums cancel differently)."""
  np.testing.assert_allclose(np.asarray(ours), theirs, rtol=rtol, atol=1e-8 * np.abs(theirs).max())
