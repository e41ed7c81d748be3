"""Pure array helpers for 3D volumes [Z, Y, X]: projections, peak location, orthogonal slices."""

import numpy as np

from bugnist_jax.viz._common import as_volume

# For the 2D view after projecting/slicing along axis a: (axis drawn left-right, axis drawn
# top-down). Side views (a = 1, 2) are transposed so Z runs left to right: rows of views then
# share one height and the long tube axis is never squashed into a short panel.
VIEW_AXES = {0: (2, 1), 1: (0, 2), 2: (0, 1)}
AXIS_NAMES = "zyx"


def project(x: np.ndarray, axis: int, signed: bool = False) -> np.ndarray:
  """Max projection of [Z, Y, X] along `axis` (natural order of the other two axes).

  With `signed`, takes the value of largest magnitude (keeping its sign) instead of the max.
  """
  if not signed:
    return x.max(axis=axis)
  idx = np.expand_dims(np.abs(x).argmax(axis=axis), axis)
  return np.take_along_axis(x, idx, axis=axis).squeeze(axis)


def max_projections(x, signed: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Volume [Z, Y, X] (or [Z, Y, X, 1]) -> MIPs along Z [Y, X], along Y [Z, X], along X [Z, Y]."""
  x = as_volume(x, "volume")
  return tuple(project(x, a, signed) for a in range(3))


def peak_index(saliency) -> tuple[int, int, int]:
  """(z, y, x) of the largest |saliency| (the argmax for non-negative maps)."""
  s = as_volume(saliency, "saliency")
  return tuple(int(i) for i in np.unravel_index(np.abs(s).argmax(), s.shape))


def orthogonal_slices(x, index: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Slices of v [Z, Y, X] through `index` = (z, y, x): v[z] [Y, X], v[:, y] [Z, X], v[:, :, x]
  [Z, Y]."""
  v = as_volume(x, "volume")
  z, y, w = index
  return v[z], v[:, y], v[:, :, w]


def peak_slices(volume, saliency) -> tuple[tuple[int, int, int], tuple, tuple]:
  """Orthogonal slices through the saliency peak: (peak (z, y, x), volume slices, map slices)."""
  vol, sal = as_volume(volume, "volume"), as_volume(saliency, "saliency")
  if vol.shape != sal.shape:
    raise ValueError(f"saliency: shape {sal.shape} does not match volume shape {vol.shape}")
  peak = peak_index(sal)
  return peak, orthogonal_slices(vol, peak), orthogonal_slices(sal, peak)


def montage_indices(depth: int, step: int | None = None, max_slices: int = 16) -> np.ndarray:
  """Every `step`-th index along Z, centred in the volume; step defaults to <= max_slices."""
  if step is None:
    step = max(1, -(-depth // max_slices))
  if step < 1:
    raise ValueError(f"step: must be >= 1, got {step}")
  n = -(-depth // step) if step <= depth else 1
  start = (depth - 1 - (n - 1) * step) // 2  # centre so both ends are treated alike
  return start + step * np.arange(n)


def oriented(view: np.ndarray, axis: int) -> np.ndarray:
  """2D view from `project`/`orthogonal_slices` along `axis` -> as drawn (see VIEW_AXES)."""
  return view if axis == 0 else view.T
