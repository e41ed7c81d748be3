"""Explanation figures for 2D images and 3D volumes alike: the functions dispatch on the rank.

`image` is one item: a 2D image [H, W(, 1|3)] or a volume [Z, Y, X(, 1)] (a trailing channel
axis of 1 or 3 marks 2D when the array has three axes); maps are [*spatial] display maps
(`attribution.display_map`).
"""

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from bugnist_jax.viz._common import PathLike
from bugnist_jax.viz.overlay import plot_overlay_grid, plot_saliency_grid
from bugnist_jax.viz.sweep import plot_map_grid
from bugnist_jax.viz.tiff import save_imagej_stack
from bugnist_jax.viz.volume import plot_explanation_panel


def is_volume(image) -> bool:
  """[Z, Y, X] or [Z, Y, X, 1] (a volume) rather than [H, W], [H, W, 1] or [H, W, 3]."""
  a = np.asarray(image)
  return a.ndim == 4 or (a.ndim == 3 and a.shape[-1] not in (1, 3))


def _volume(image) -> np.ndarray:
  a = np.asarray(image)
  return a[..., 0] if a.ndim == 4 else a


def plot_explanation(
  image, maps: Mapping[str, np.ndarray], path: PathLike | None, title: str | None = None
) -> Figure:
  """One item with its maps (name -> map). 2D: the image and one overlay per map. 3D: with one
  map, its projections and slices through its peak; with several, one MIP per map."""
  if not maps:
    raise ValueError("maps: need at least one map")
  if not is_volume(image):
    return plot_saliency_grid(image, maps, path, title)
  if len(maps) == 1:
    return plot_explanation_panel(_volume(image), next(iter(maps.values())), path, title)
  return plot_map_grid(_volume(image), list(maps.values()), list(maps), path, title)


def plot_method_grid(
  images: Sequence[np.ndarray],
  rows: Sequence[Sequence[np.ndarray]],
  columns: Sequence[str],
  path: PathLike | None,
  title: str | None = None,
  row_labels: Sequence[str] | None = None,
) -> Figure:
  """Rows: items; columns: the input, then one map per setting (methods, sigmas, models)."""
  if not len(images):
    raise ValueError("images: need at least one item")
  if is_volume(images[0]):
    return plot_map_grid([_volume(im) for im in images], rows, columns, path, title, row_labels)
  return plot_overlay_grid(images, rows, columns, path, title, row_labels)


def save_stack(path: PathLike, image, maps: Mapping[str, np.ndarray]):
  """ImageJ TIFF of the item and its maps as channels (Fiji, napari); a 2D item is one plane
  (RGB as its luminance)."""
  if is_volume(image):
    return save_imagej_stack(path, _volume(image), maps)
  a = np.asarray(image, np.float32)
  gray = (
    a @ np.array([0.299, 0.587, 0.114], np.float32)
    if a.ndim == 3 and a.shape[-1] == 3
    else (a.reshape(a.shape[:2]))
  )
  return save_imagej_stack(path, gray[None], {k: np.asarray(v)[None] for k, v in maps.items()})
