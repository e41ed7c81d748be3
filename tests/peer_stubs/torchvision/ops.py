"""Stand-in `box_iou` used by pytorch_grad_cam's detection target."""

from torchvision._stub import unavailable

box_iou = unavailable("ops.box_iou")
