"""Stand-in `torchvision.models`: only `resnet`'s block classes."""

from torchvision.models import resnet

__all__ = ["resnet"]
