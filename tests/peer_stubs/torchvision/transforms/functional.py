"""Stand-in `resize` named by pytorch_grad_cam.sess."""

from torchvision._stub import unavailable

resize = unavailable("transforms.functional.resize")
