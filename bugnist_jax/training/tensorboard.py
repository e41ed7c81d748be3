"""TensorBoard event files in `workdir/tensorboard/`, beside `metrics.jsonl`, with tensorboardX
(no TensorFlow): `tensorboard --logdir=runs` shows every run under it.

Written by training: `train/*` (loss, cross_entropy, accuracy, grad_norm, learning_rate,
examples_per_s, epoch) at every log step; `validation/loss`, `validation/accuracy`, and as
images the confusion matrix (percent per true class) and the input-gradient maps of the first
`config.train.tensorboard_images` validation items, at every evaluation.
"""

import pathlib
import sys

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bugnist_jax import viz

SUBDIR = "tensorboard"


def _summary_writer_class():
  """tensorboardX's SummaryWriter, imported without torch: tensorboardX imports torch, when
  it is installed, only to accept torch tensors (3-4 s and hundreds of MB per run); we pass
  numpy. An import of torch elsewhere is not affected."""
  blocked = "torch" not in sys.modules
  if blocked:
    sys.modules["torch"] = None  # `import torch` raises ImportError while this is set
  try:
    from tensorboardX import SummaryWriter
  finally:
    if blocked:
      del sys.modules["torch"]
  return SummaryWriter


def figure_image(fig: Figure) -> np.ndarray:
  """A matplotlib figure rendered with Agg: uint8 [H, W, 3]."""
  canvas = FigureCanvasAgg(fig)
  canvas.draw()
  return np.asarray(canvas.buffer_rgba())[..., :3].copy()


class TensorBoard:
  """Event files of one run. `enabled=False` (processes other than 0) writes nothing.
  `resumed_at`: the step a resumed run restarted from; TensorBoard hides the events the
  interrupted run wrote after it, which the resumed run writes again."""

  def __init__(self, workdir: pathlib.Path, enabled: bool = True, resumed_at: int | None = None):
    self.logdir = pathlib.Path(workdir) / SUBDIR
    self.writer = None
    if enabled:
      purge = resumed_at + 1 if resumed_at else None
      self.writer = _summary_writer_class()(str(self.logdir), purge_step=purge)

  def scalars(self, step: int, split: str, metrics: dict[str, float]) -> None:
    """One scalar `<split>/<name>` per entry of `metrics`."""
    if self.writer is not None:
      for name, value in metrics.items():
        self.writer.add_scalar(f"{split}/{name}", float(value), step)

  def figure(self, tag: str, fig: Figure, step: int) -> None:
    if self.writer is not None:
      self.writer.add_image(tag, figure_image(fig), step, dataformats="HWC")

  def evaluation_figures(
    self,
    step: int,
    cm: np.ndarray,
    class_names,
    items: dict | None = None,
    gradients: np.ndarray | None = None,
  ) -> None:
    """The confusion matrix `cm` [K, K] (counts), and per item of `items` (`image` uint8
    [N, *spatial, C], `label` [N], `prediction` [N]) its |gradient| map `gradients`
    [N, *spatial, C] summed over channels."""
    if self.writer is None:
      return
    accuracy = np.trace(cm) / max(cm.sum(), 1)
    title = f"validation, step {step}: accuracy {accuracy:.1%}, % per true class"
    self.figure(
      "validation/confusion_matrix", viz.plot_confusion_matrix(cm, class_names, None, title), step
    )
    if items is None or gradients is None:
      return
    for k, image in enumerate(items["image"]):
      true, predicted = class_names[items["label"][k]], class_names[items["prediction"][k]]
      fig = viz.plot_explanation(
        image[..., 0] if image.shape[-1] == 1 else image,
        {"input gradient": np.abs(gradients[k]).sum(-1)},
        None,
        f"validation #{k}, step {step}: true {true}, predicted {predicted}",
      )
      self.figure(f"validation/gradient_{k}", fig, step)

  def close(self) -> None:
    if self.writer is not None:
      self.writer.close()
      self.writer = None
