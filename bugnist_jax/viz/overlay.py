"""2D saliency overlays: a map drawn in colour over an image, and a grid of several methods."""

from collections.abc import Mapping

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from bugnist_jax.viz._common import (
  PathLike,
  as_image,
  as_map2d,
  clean_axis,
  finish,
  new_figure,
)

SIGNED_CMAP = "RdBu_r"  # diverging: red positive, blue negative, white-ish at zero
UNSIGNED_CMAP = "jet"  # as in the BugNIST study; reads well over dark micro-CT backgrounds


def is_signed(m: np.ndarray) -> bool:
  """A map is treated as signed when it has negative values (e.g. raw gradients, IG)."""
  return bool(np.any(np.asarray(m) < 0))


def map_scale(m: np.ndarray, percentile: float = 100.0) -> float:
  """The magnitude mapped to full colour: a percentile of |m| (100 = max); 1 if m is all zero."""
  s = float(np.percentile(np.abs(m), percentile))
  return s if s > 0 else 1.0


def saliency_rgba(
  m: np.ndarray,
  signed: bool | None = None,
  cmap: str | None = None,
  alpha: float = 0.8,
  vmax: float | None = None,
) -> np.ndarray:
  """Map [...] -> RGBA [..., 4] whose opacity grows with |m|, so weak saliency stays transparent.

  Signed maps use a diverging colormap on [-vmax, vmax]; unsigned ones a sequential colormap on
  [0, vmax] (negative values clipped). `vmax` defaults to max |m|; pass one shared value to
  compare several maps (e.g. slices of one volume) on one scale.
  """
  m = np.asarray(m, dtype=np.float32)
  signed = is_signed(m) if signed is None else signed
  scale = map_scale(m) if vmax is None else float(vmax)
  if signed:
    v = np.clip(m / scale, -1.0, 1.0)
    rgba = mpl.colormaps[cmap or SIGNED_CMAP]((v + 1.0) / 2.0)
    strength = np.abs(v)
  else:
    v = np.clip(m / scale, 0.0, 1.0)
    rgba = mpl.colormaps[cmap or UNSIGNED_CMAP](v)
    strength = v
  rgba[..., 3] = alpha * np.sqrt(strength)  # sqrt: mid-level saliency still clearly visible
  return rgba


def colorbar_mappable(signed: bool, cmap: str | None = None) -> ScalarMappable:
  """A mappable for `fig.colorbar` matching `saliency_rgba` (map divided by its scale)."""
  norm = Normalize(-1.0, 1.0) if signed else Normalize(0.0, 1.0)
  return ScalarMappable(norm=norm, cmap=cmap or (SIGNED_CMAP if signed else UNSIGNED_CMAP))


def draw_overlay(
  ax: Axes,
  image: np.ndarray,
  m: np.ndarray | None,
  signed: bool | None = None,
  cmap: str | None = None,
  alpha: float = 0.8,
  vmax: float | None = None,
) -> None:
  """Draws `image` ([H, W] gray or [H, W, 3] in [0, 1]) and, if given, map `m` [H, W] on top.

  Under a map an RGB image is drawn as gray luminance: colours of the image would otherwise
  be confused with the colormap.
  """
  if m is not None and image.ndim == 3:
    image = image @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
  if image.ndim == 2:
    ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
  else:
    ax.imshow(np.clip(image, 0.0, 1.0), interpolation="nearest")
  if m is not None:
    ax.imshow(saliency_rgba(m, signed, cmap, alpha, vmax), interpolation="nearest")


def plot_overlay(
  image,
  saliency,
  path: PathLike | None,
  title: str | None = None,
  signed: bool | None = None,
  cmap: str | None = None,
  alpha: float = 0.8,
) -> Figure:
  """One image [H, W(, 1|3)] with its map [H, W(, C)] overlaid, plus a colour bar."""
  return plot_saliency_grid(image, {"": saliency}, path, title, signed, cmap, alpha)


def plot_saliency_grid(
  image,
  maps: Mapping[str, np.ndarray],
  path: PathLike | None,
  title: str | None = None,
  signed: bool | None = None,
  cmap: str | None = None,
  alpha: float = 0.8,
  show_input: bool = True,
) -> Figure:
  """The input, then one overlay panel per method (dict key = panel title), side by side.

  Args:
    image: [H, W], [H, W, 1] or [H, W, 3]; uint8 as is, floats min-max scaled.
    maps: name -> map [H, W] or [H, W, C] (channels summed). Each map gets its own scale.
    signed: force the diverging (True) or sequential (False) colormap; None = per map.
  """
  img = as_image(image, "image")
  if not maps:
    raise ValueError("maps: need at least one saliency map")
  ms = {k: as_map2d(v, f"maps[{k!r}]", img.shape[:2]) for k, v in maps.items()}
  panels = ([("input", None)] if show_input else []) + list(ms.items())
  h, w = img.shape[:2]
  panel = 2.6
  fig = new_figure(panel * len(panels), panel * h / w + 1.0)
  for ax, (name, m) in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels, strict=True):
    draw_overlay(ax, img, m, signed, cmap, alpha)
    if name:
      ax.set_title(name, fontsize=10)
    clean_axis(ax)
    # One colour bar per panel (methods differ in sign, a shared bar could mislead); the input
    # panel gets an invisible one so that all panels keep the same size.
    s = (m is not None and is_signed(m)) if signed is None else signed
    cbar = fig.colorbar(
      colorbar_mappable(s, cmap), ax=ax, orientation="horizontal", shrink=0.8, aspect=25, pad=0.02
    )
    cbar.ax.tick_params(labelsize=7)
    cbar.ax.set_visible(m is not None)
  return finish(fig, path, title)


def plot_overlay_grid(
  images,
  rows,
  columns,
  path: PathLike | None,
  title: str | None = None,
  row_labels=None,
  cmap: str | None = None,
  alpha: float = 0.8,
) -> Figure:
  """Rows: images [H, W(, C)]; columns: the input, then one overlay per map of the row
  (`rows[i][j]` [H, W], each on its own scale, diverging colours where it has signs)."""
  if len(rows) != len(images):
    raise ValueError(f"rows: got {len(rows)} rows of maps for {len(images)} images")
  if row_labels is not None and len(row_labels) != len(images):
    raise ValueError(f"row_labels: got {len(row_labels)} labels for {len(images)} images")
  imgs = [as_image(im, f"images[{i}]") for i, im in enumerate(images)]
  h, w = imgs[0].shape[:2]
  panel = 2.0
  fig = new_figure(panel * (len(columns) + 1), len(imgs) * (panel * h / w + 0.3) + 0.3)
  axes = fig.subplots(len(imgs), len(columns) + 1, squeeze=False)
  for r, (img, row) in enumerate(zip(imgs, rows, strict=True)):
    if len(row) != len(columns):
      raise ValueError(f"rows[{r}]: got {len(row)} maps for {len(columns)} columns")
    for c, m in enumerate([None, *row]):
      ax = axes[r, c]
      m = None if m is None else as_map2d(m, f"rows[{r}][{c - 1}]", img.shape[:2])
      draw_overlay(ax, img, m, None, cmap, alpha)
      clean_axis(ax)
      if r == 0:
        ax.set_title("input" if c == 0 else columns[c - 1], fontsize=9)
    if row_labels is not None:
      axes[r, 0].set_ylabel(row_labels[r], fontsize=8)
  return finish(fig, path, title)
