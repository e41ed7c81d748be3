"""torchvision's ResNet, R(2+1)D-18 and DenseNet, ported by hand to torch.nn (torchvision does not
load here), with a width multiplier and any rank, for the parity and parameter-count tests.

The module and parameter names are torchvision's (`resnet.py`, `video/resnet.py`,
`densenet.py`), so their state_dicts have torchvision's keys. A 3D ResNet or DenseNet is the 2D
one with Conv3d, BatchNorm3d and cubic kernels, as `bugnist_jax.models.resnet` defines it.
"""

from collections import OrderedDict

import torch
from torch import nn

RESNETS = {
  "resnet18": ("basic", (2, 2, 2, 2)),
  "resnet34": ("basic", (3, 4, 6, 3)),
  "resnet50": ("bottleneck", (3, 4, 6, 3)),
  "covid": ("basic", (2, 1, 1, 1)),
}
DENSENETS = {  # blocks, initial features, growth, transition widths (None: halve)
  "densenet121": ((6, 12, 24, 16), 64, 32, None),
  "covid": ((6, 10, 2, 1), 64, 32, (128, 256, 512)),
}


def _w(width: float, f: int) -> int:
  return max(1, int(round(f * width)))  # models.resnet.scaled


def _nd(ndim: int):
  return {2: (nn.Conv2d, nn.BatchNorm2d), 3: (nn.Conv3d, nn.BatchNorm3d)}[ndim]


class BasicBlock(nn.Module):
  expansion = 1

  def __init__(self, ndim, cin, planes, stride, downsample):
    super().__init__()
    conv, bn = _nd(ndim)
    self.conv1 = conv(cin, planes, 3, stride, 1, bias=False)
    self.bn1 = bn(planes)
    self.relu = nn.ReLU(inplace=True)
    self.conv2 = conv(planes, planes, 3, 1, 1, bias=False)
    self.bn2 = bn(planes)
    self.downsample = downsample

  def forward(self, x):
    out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
    return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
  expansion = 4

  def __init__(self, ndim, cin, planes, stride, downsample):
    super().__init__()
    conv, bn = _nd(ndim)
    self.conv1 = conv(cin, planes, 1, bias=False)
    self.bn1 = bn(planes)
    self.conv2 = conv(planes, planes, 3, stride, 1, bias=False)
    self.bn2 = bn(planes)
    self.conv3 = conv(planes, planes * 4, 1, bias=False)
    self.bn3 = bn(planes * 4)
    self.relu = nn.ReLU(inplace=True)
    self.downsample = downsample

  def forward(self, x):
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.bn3(self.conv3(self.relu(self.bn2(self.conv2(out)))))
    return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet(nn.Module):
  """torchvision's `ResNet` of `variant` in `ndim` dimensions, widths times `width`."""

  def __init__(
    self, variant="resnet18", ndim=2, in_channels=3, num_classes=1000, width=1.0, blocks=()
  ):
    super().__init__()
    kind, counts = RESNETS[variant]
    counts = tuple(blocks) or counts
    block = BasicBlock if kind == "basic" else Bottleneck
    conv, bn = _nd(ndim)
    cin = _w(width, 64)
    self.conv1 = conv(in_channels, cin, 7, 2, 3, bias=False)
    self.bn1 = bn(cin)
    self.relu = nn.ReLU(inplace=True)
    self.maxpool = (nn.MaxPool2d if ndim == 2 else nn.MaxPool3d)(3, 2, 1)
    for i, (planes, n) in enumerate(zip((64, 128, 256, 512), counts, strict=True), start=1):
      planes, blocks = _w(width, planes), []
      for j in range(n):
        stride = 2 if i > 1 and j == 0 else 1
        down = None
        if stride != 1 or cin != planes * block.expansion:
          down = nn.Sequential(
            conv(cin, planes * block.expansion, 1, stride, bias=False), bn(planes * block.expansion)
          )
        blocks.append(block(ndim, cin, planes, stride, down))
        cin = planes * block.expansion
      setattr(self, f"layer{i}", nn.Sequential(*blocks))
    self.avgpool = (nn.AdaptiveAvgPool2d if ndim == 2 else nn.AdaptiveAvgPool3d)(1)
    self.fc = nn.Linear(cin, num_classes)

  def forward(self, x):
    x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
    for i in range(1, 5):
      x = getattr(self, f"layer{i}")(x)
    return self.fc(torch.flatten(self.avgpool(x), 1))


class Conv2Plus1D(nn.Sequential):
  def __init__(self, cin, cout, mid, stride=1):
    super().__init__(
      nn.Conv3d(cin, mid, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False),
      nn.BatchNorm3d(mid),
      nn.ReLU(inplace=True),
      nn.Conv3d(mid, cout, (3, 1, 1), (stride, 1, 1), (1, 0, 0), bias=False),
    )


class VideoBlock(nn.Module):
  """torchvision's video `BasicBlock` with `Conv2Plus1D`: one M per block."""

  def __init__(self, cin, planes, stride, downsample):
    super().__init__()
    mid = (cin * planes * 27) // (cin * 9 + 3 * planes)
    self.conv1 = nn.Sequential(
      Conv2Plus1D(cin, planes, mid, stride), nn.BatchNorm3d(planes), nn.ReLU(inplace=True)
    )
    self.conv2 = nn.Sequential(Conv2Plus1D(planes, planes, mid), nn.BatchNorm3d(planes))
    self.relu = nn.ReLU(inplace=True)
    self.downsample = downsample

  def forward(self, x):
    out = self.conv2(self.conv1(x))
    return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class R2Plus1D18(nn.Module):
  """torchvision's `video.r2plus1d_18` (stem R2Plus1dStem, no max pool), widths times `width`."""

  def __init__(self, in_channels=3, num_classes=400, width=1.0, blocks=(2, 2, 2, 2)):
    super().__init__()
    cin, stem = _w(width, 64), _w(width, 45)
    self.stem = nn.Sequential(
      nn.Conv3d(in_channels, stem, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False),
      nn.BatchNorm3d(stem),
      nn.ReLU(inplace=True),
      nn.Conv3d(stem, cin, (3, 1, 1), 1, (1, 0, 0), bias=False),
      nn.BatchNorm3d(cin),
      nn.ReLU(inplace=True),
    )
    for i, (planes, n) in enumerate(zip((64, 128, 256, 512), blocks, strict=True), start=1):
      planes, layer = _w(width, planes), []
      for j in range(n):
        stride = 2 if i > 1 and j == 0 else 1
        down = None
        if stride != 1 or cin != planes:
          down = nn.Sequential(
            nn.Conv3d(cin, planes, 1, stride, bias=False), nn.BatchNorm3d(planes)
          )
        layer.append(VideoBlock(cin, planes, stride, down))
        cin = planes
      setattr(self, f"layer{i}", nn.Sequential(*layer))
    self.avgpool = nn.AdaptiveAvgPool3d(1)
    self.fc = nn.Linear(cin, num_classes)

  def forward(self, x):
    x = self.stem(x)
    for i in range(1, 5):
      x = getattr(self, f"layer{i}")(x)
    return self.fc(torch.flatten(self.avgpool(x), 1))


class DenseLayer(nn.Module):
  def __init__(self, ndim, cin, growth):
    super().__init__()
    conv, bn = _nd(ndim)
    self.norm1, self.relu1 = bn(cin), nn.ReLU(inplace=True)
    self.conv1 = conv(cin, 4 * growth, 1, bias=False)
    self.norm2, self.relu2 = bn(4 * growth), nn.ReLU(inplace=True)
    self.conv2 = conv(4 * growth, growth, 3, 1, 1, bias=False)

  def forward(self, x):
    return self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))


class DenseBlock(nn.ModuleDict):
  def __init__(self, ndim, n, cin, growth):
    super().__init__()
    for i in range(n):
      self.add_module(f"denselayer{i + 1}", DenseLayer(ndim, cin + i * growth, growth))

  def forward(self, x):
    for layer in self.values():
      x = torch.cat([x, layer(x)], 1)
    return x


class DenseNet(nn.Module):
  """torchvision's `DenseNet` (or the DeepVisionVR CovidDenseNet) in `ndim` dimensions."""

  def __init__(
    self, variant="densenet121", ndim=2, in_channels=3, num_classes=1000, width=1.0, blocks=()
  ):
    super().__init__()
    counts, init, growth, transitions = DENSENETS[variant]
    counts, init, growth = tuple(blocks) or counts, _w(width, init), _w(width, growth)
    conv, bn = _nd(ndim)
    pool = nn.MaxPool2d if ndim == 2 else nn.MaxPool3d
    avg = nn.AvgPool2d if ndim == 2 else nn.AvgPool3d
    self.features = nn.Sequential(
      OrderedDict(
        conv0=conv(in_channels, init, 7, 2, 3, bias=False),
        norm0=bn(init),
        relu0=nn.ReLU(inplace=True),
        pool0=pool(3, 2, 1),
      )
    )
    features = init
    for i, n in enumerate(counts):
      self.features.add_module(f"denseblock{i + 1}", DenseBlock(ndim, n, features, growth))
      features += n * growth
      if i < len(counts) - 1:
        out = features // 2 if transitions is None else _w(width, transitions[i])
        transition = nn.Sequential(
          OrderedDict(
            norm=bn(features),
            relu=nn.ReLU(inplace=True),
            conv=conv(features, out, 1, bias=False),
            pool=avg(2, 2),
          )
        )
        self.features.add_module(f"transition{i + 1}", transition)
        features = out
    self.features.add_module("norm5", bn(features))
    self.classifier = nn.Linear(features, num_classes)
    self.pool = (nn.AdaptiveAvgPool2d if ndim == 2 else nn.AdaptiveAvgPool3d)(1)

  def forward(self, x):
    x = torch.relu(self.features(x))
    return self.classifier(torch.flatten(self.pool(x), 1))


def randomize_norms(net: nn.Module, seed: int = 0) -> nn.Module:
  """Non-trivial batch-norm statistics and affine parameters (the defaults hide a transposed or
  missing copy); returns `net` in eval mode."""
  torch.manual_seed(seed)
  with torch.no_grad():
    for m in net.modules():
      if isinstance(m, nn.BatchNorm2d | nn.BatchNorm3d):
        m.running_mean.uniform_(-0.2, 0.2)
        m.running_var.uniform_(0.5, 1.5)
        m.weight.uniform_(0.5, 1.5)
        m.bias.uniform_(-0.1, 0.1)
  return net.eval()


def count(net: nn.Module) -> int:
  """Trainable parameters (what torchvision's docs count; buffers left out)."""
  return sum(p.numel() for p in net.parameters())
