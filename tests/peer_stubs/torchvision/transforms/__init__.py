"""Stand-in transforms named by pytorch_grad_cam.utils.image (its preprocess_image only)."""

from torchvision._stub import Unavailable
from torchvision.transforms import functional


class Compose(Unavailable):
  pass


class Normalize(Unavailable):
  pass


class ToTensor(Unavailable):
  pass


__all__ = ["Compose", "Normalize", "ToTensor", "functional"]
