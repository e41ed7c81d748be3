"""Stand-in ResNet blocks: zennit's ResNet canonizer checks `isinstance` against them."""

import torch

from torchvision._stub import unavailable


class BasicBlock(torch.nn.Module):
  """Never instantiated here."""

  def __init__(self, *args, **kwargs):
    unavailable("models.resnet.BasicBlock")()


class Bottleneck(torch.nn.Module):
  """Never instantiated here."""

  def __init__(self, *args, **kwargs):
    unavailable("models.resnet.Bottleneck")()
