"""Per-record transforms (numpy, run in the grain pipeline) and the in-graph normaliser.

Records stay uint8 through the pipeline: a quarter of the bytes of float32 to move to the
device. Scaling to [0, 1] and standardising happen inside the jitted step (`normalize`).
"""

import dataclasses

import jax.numpy as jnp
import numpy as np
from scipy import ndimage

NORMALIZATIONS = ("standardize", "unit")


@dataclasses.dataclass(frozen=True)
class Normalization:
  """x -> (x / 255 - mean) / std: the one map from stored uint8 intensities to model inputs.

  'standardize' fits mean and std on training images scaled to [0, 1]; 'unit' is mean 0,
  std 1, inputs in [0, 1] (what a retina-like front-end expects). Every consumer (training,
  evaluation, explain, look_inside, the studies) takes it from the run; `invert` maps model
  inputs back to [0, 1] intensities for display.
  """

  mean: float
  std: float
  kind: str = "standardize"

  def __call__(self, image):
    """image uint8 [B, *spatial, C] (numpy or jax) -> float32 of the same shape."""
    return self.from_intensities(jnp.asarray(image, jnp.float32) / 255.0)

  def from_intensities(self, z):
    """Intensities z in [0, 1] (any shape, float) -> model inputs: (z - mean) / std."""
    return (z - self.mean) / self.std

  def invert(self, x):
    """Model inputs (any shape) -> intensities in [0, 1] (not clipped): x * std + mean; the
    inverse of `from_intensities`."""
    return x * self.std + self.mean

  def to_uint8(self, x) -> np.ndarray:
    """Model inputs -> uint8 intensities, clipped to [0, 255] (for images and TIFFs)."""
    return np.clip(np.rint(np.asarray(self.invert(x), np.float32) * 255.0), 0, 255).astype(np.uint8)

  @classmethod
  def fit(cls, images: list[np.ndarray], kind: str = "standardize") -> "Normalization":
    """Mean and std over all voxels of `images` (uint8 arrays); 'unit' needs none."""
    if kind not in NORMALIZATIONS:
      raise ValueError(f"normalization: unknown {kind!r}; valid: {', '.join(NORMALIZATIONS)}")
    if kind == "unit":
      return cls(mean=0.0, std=1.0, kind=kind)
    data = np.concatenate([np.asarray(im, np.float64).ravel() / 255.0 for im in images])
    return cls(mean=float(data.mean()), std=float(max(data.std(), 1e-6)), kind=kind)


_FULL_CONNECTIVITY = {ndim: ndimage.generate_binary_structure(ndim, ndim) for ndim in (2, 3)}


def remove_packing(image: np.ndarray, threshold: int, min_size: int = 0) -> np.ndarray:
  """Keeps only the largest connected component above `threshold` (the bug); zeroes the rest.

  The usual BugNIST recipe for removing the cotton: threshold, then the largest 26-connected
  (8-connected in 2D) component. image uint8 [*spatial, 1]; returns the same shape.
  If no component reaches `min_size` voxels the image is returned blank.
  """
  spatial = image[..., 0]
  labels, count = ndimage.label(spatial > threshold, structure=_FULL_CONNECTIVITY[spatial.ndim])
  if count == 0:
    return np.zeros_like(image)
  sizes = np.bincount(labels.ravel())[1:]
  biggest = int(np.argmax(sizes)) + 1
  if sizes[biggest - 1] < min_size:
    return np.zeros_like(image)
  return np.where((labels == biggest)[..., None], image, 0).astype(image.dtype)


def random_flip_rotate(image: np.ndarray, rng: np.random.Generator, *extras: np.ndarray):
  """Random flips of every spatial axis and a random 90-degree rotation of the last two.

  For volumes [Z, Y, X, C] the rotation is about the tube axis Z; it needs Y == X. `extras`
  (masks [*spatial]) get the same transform so they stay aligned with the image.
  Returns the transformed image, then the transformed extras.
  """
  ndim = image.ndim - 1
  arrays = [image, *(e[..., None] for e in extras)]
  for axis in range(ndim):
    if rng.random() < 0.5:
      arrays = [np.flip(a, axis) for a in arrays]
  if image.shape[ndim - 2] == image.shape[ndim - 1]:
    k = int(rng.integers(4))
    arrays = [np.rot90(a, k, axes=(ndim - 2, ndim - 1)) for a in arrays]
  arrays = [np.ascontiguousarray(a) for a in arrays]
  return (arrays[0], *(a[..., 0] for a in arrays[1:]))
