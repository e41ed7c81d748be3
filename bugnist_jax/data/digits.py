"""Real handwritten digits with no download, and in-memory image sources.

`load_sklearn_digits` gives the 1797 8x8 digits that ship inside scikit-learn (UCI's optical
recognition of handwritten digits, 16 grey levels), upsampled bilinearly to fill all but a
2-pixel border of `shape` (the authors pad MNIST's 28x28 by 2 to 32x32), as uint8 [N, H, W, 1].
They are real handwriting, but not MNIST: coarser (8x8 at source), fewer (1797), and written by
other people. `ArraySource` serves any stacked images as a source.
"""

import numpy as np
from scipy import ndimage

from bugnist_jax.data.sources import IndexedSource
from bugnist_jax.errors import UserError

DIGIT_CLASSES = tuple(str(d) for d in range(10))
BORDER = 2  # pixels of background around the upsampled digit, as the authors' Pad(2)


class ArraySource(IndexedSource):
  """Images uint8 [N, *spatial, C] and labels [N] held in memory (pickles with them)."""

  def __init__(self, images: np.ndarray, labels: np.ndarray, name: str = "arrays"):
    if len(images) != len(labels):
      raise ValueError(f"images, labels: {len(images)} images but {len(labels)} labels")
    self.images = np.ascontiguousarray(images, np.uint8)
    self._labels = np.asarray(labels, np.int32)
    self.num_examples = len(self.images)
    self.name = name

  def record(self, i: int) -> dict[str, np.ndarray]:
    return {"image": self.images[i], "label": self._labels[i]}

  def labels(self) -> np.ndarray:
    return self._labels

  def __repr__(self) -> str:
    return f"ArraySource({self.name}, {self.num_examples} x {self.images.shape[1:]})"


def fit_to_shape(images: np.ndarray, shape: tuple[int, int], what: str) -> np.ndarray:
  """uint8 [N, h, w, C] padded with zeros, centred, to [N, *shape, C] (MNIST 28 -> 32).

  A UserError naming `shape` if it is smaller than the images.
  """
  h, w = images.shape[1:3]
  H, W = shape
  if h > H or w > W:
    raise UserError(f"shape: {tuple(shape)} is smaller than the {h}x{w} images of {what}")
  top, left = (H - h) // 2, (W - w) // 2
  pads = ((0, 0), (top, H - h - top), (left, W - w - left), (0, 0))
  return np.pad(images, pads)


def load_sklearn_digits(
  shape: tuple[int, int] = (32, 32), limit: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
  """scikit-learn's digits as (uint8 [N, *shape, 1], int32 labels [N]); N = 1797 or `limit`.

  Each 8x8 image (grey levels 0..16) is zoomed bilinearly to `shape` minus a `BORDER` on every
  side and scaled to 0..255. The first `limit` items keep the classes balanced (the file cycles
  through them).
  """
  from sklearn.datasets import load_digits  # heavy import; only this source needs it

  shape = tuple(int(s) for s in shape)
  if len(shape) != 2 or min(shape) < 8 + 2 * BORDER:
    raise UserError(f"shape: {shape} must be two sizes (H, W), each >= {8 + 2 * BORDER}")
  digits = load_digits()
  images, labels = digits.images, digits.target
  if limit is not None:
    images, labels = images[:limit], labels[:limit]
  inner = (shape[0] - 2 * BORDER, shape[1] - 2 * BORDER)
  zoom = (1, inner[0] / 8, inner[1] / 8)
  big = ndimage.zoom(
    images.astype(np.float32) / 16.0, zoom, order=1, grid_mode=True, mode="nearest"
  )
  big = np.clip(np.rint(big * 255.0), 0, 255).astype(np.uint8)[..., None]
  return fit_to_shape(big, shape, "the digits"), labels.astype(np.int32)


__all__ = ["ArraySource", "BORDER", "DIGIT_CLASSES", "fit_to_shape", "load_sklearn_digits"]
