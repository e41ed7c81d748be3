"""3D figures: MIPs, orthogonal slices through the saliency peak, slice montage, explanation panel.

Volumes are [Z, Y, X] (or [Z, Y, X, 1]); Z is the long tube axis. Side views are drawn with Z
running left to right at its true length (see projections.VIEW_AXES).
"""

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from bugnist_jax.viz._common import (
  PathLike,
  add_axes_inches,
  as_volume,
  clean_axis,
  finish,
  new_figure,
  normalize01,
)
from bugnist_jax.viz.overlay import colorbar_mappable, draw_overlay, is_signed, map_scale
from bugnist_jax.viz.projections import (
  AXIS_NAMES,
  VIEW_AXES,
  montage_indices,
  oriented,
  orthogonal_slices,
  peak_index,
  project,
)

_ROWS = ("mip", "mip_map", "peak")
_WIDTH = 11.0  # inches for one row of three views


def _check_pair(volume, saliency) -> tuple[np.ndarray, np.ndarray | None]:
  vol = normalize01(as_volume(volume, "volume"))  # one scale for every view of the volume
  if saliency is None:
    return vol, None
  sal = as_volume(saliency, "saliency")
  if sal.shape != vol.shape:
    raise ValueError(f"saliency: shape {sal.shape} does not match volume shape {vol.shape}")
  return vol, sal


def _view_rows(
  volume,
  saliency,
  rows: Sequence[str],
  path: PathLike | None,
  title: str | None,
  signed: bool | None,
  cmap: str | None,
  alpha: float,
) -> Figure:
  """Rows of three views (along z, y, x). Row kinds: 'mip' (volume MIPs), 'mip_map' (volume MIPs
  with the saliency MIP overlaid), 'peak' (slices through the saliency peak, overlay, crosshair)."""
  vol, sal = _check_pair(volume, saliency)
  z, y, x = vol.shape
  signed = (is_signed(sal) if sal is not None else False) if signed is None else signed
  vmax = map_scale(sal) if sal is not None else None
  peak = peak_index(sal) if sal is not None else None

  widths = [vol.shape[VIEW_AXES[a][0]] for a in range(3)]  # displayed widths: x, z, z
  height = max(y, x)
  map_rows = [r for r, k in enumerate(rows) if k != "mip"]
  # A fixed layout in inches (constrained layout measured every label of 9-13 axes per
  # figure: a third of the time of a figure that explain draws per item and method).
  left, gap = 0.3, 0.25
  bar_gap, bar, bar_labels = (0.2, 0.15, 0.75) if map_rows else (0.0, 0.0, 0.1)
  row_top, row_bottom, top = 0.28, 0.22, (0.45 if title else 0.1)
  scale = (_WIDTH - left - 2 * gap - bar_gap - bar - bar_labels) / sum(widths)  # in/voxel
  panel_h = height * scale
  row_h = row_top + panel_h + row_bottom
  fig = new_figure(_WIDTH, top + len(rows) * row_h, layout=None)

  def panel_bottom(r: int) -> float:  # row r counts from the top
    return (len(rows) - 1 - r) * row_h + row_bottom

  axes = np.empty((len(rows), 3), dtype=object)
  for r in range(len(rows)):
    bottom = panel_bottom(r)
    x0 = left
    for a in range(3):
      axes[r, a] = add_axes_inches(fig, x0, bottom, widths[a] * scale, panel_h)
      x0 += widths[a] * scale + gap
  for r, kind in enumerate(rows):
    for a in range(3):
      ax = axes[r, a]
      col, row = VIEW_AXES[a]
      if kind == "peak":
        v, m = orthogonal_slices(vol, peak)[a], orthogonal_slices(sal, peak)[a]
        label = f"slice {AXIS_NAMES[a]}={peak[a]}"
      else:
        v = project(vol, a)
        m = project(sal, a, signed) if kind == "mip_map" else None
        label = ("saliency " if m is not None else "") + f"MIP along {AXIS_NAMES[a]}"
      draw_overlay(
        ax, oriented(v, a), None if m is None else oriented(m, a), signed, cmap, alpha, vmax
      )
      if kind == "peak":  # crosshair through the peak, thin so it hides little
        ax.axvline(peak[col], color="white", lw=0.6, ls="--", alpha=0.7)
        ax.axhline(peak[row], color="white", lw=0.6, ls="--", alpha=0.7)
      ax.set_title(label, fontsize=9)
      clean_axis(ax, AXIS_NAMES[col], AXIS_NAMES[row])
  if map_rows:  # one bar beside the rows with maps, 90% of their height
    lowest = panel_bottom(map_rows[-1])
    span = (map_rows[-1] - map_rows[0]) * row_h + panel_h
    cax = add_axes_inches(fig, _WIDTH - bar_labels - bar, lowest + 0.05 * span, bar, 0.9 * span)
    cbar = fig.colorbar(colorbar_mappable(signed, cmap), cax=cax)
    cbar.set_label("saliency / max |saliency|", fontsize=8)
  return finish(fig, path, title, tight=False)


def plot_mips(
  volume,
  path: PathLike | None,
  saliency=None,
  title: str | None = None,
  signed: bool | None = None,
  cmap: str | None = None,
  alpha: float = 0.8,
) -> Figure:
  """Max-intensity projections of `volume` [Z, Y, X] along Z, Y and X; with `saliency` [Z, Y, X]
  its max projections (max |.| for signed maps) are overlaid."""
  rows = ("mip" if saliency is None else "mip_map",)
  return _view_rows(volume, saliency, rows, path, title, signed, cmap, alpha)


def plot_ortho_slices(
  volume,
  saliency,
  path: PathLike | None,
  title: str | None = None,
  signed: bool | None = None,
  cmap: str | None = None,
  alpha: float = 0.8,
) -> Figure:
  """Three orthogonal slices of `volume` [Z, Y, X] through the peak of |saliency|, map overlaid."""
  return _view_rows(volume, saliency, ("peak",), path, title, signed, cmap, alpha)


def plot_explanation_panel(
  volume,
  saliency,
  path: PathLike | None,
  title: str | None = None,
  signed: bool | None = None,
  cmap: str | None = None,
  alpha: float = 0.8,
) -> Figure:
  """One volume's explanation: row 1 volume MIPs, row 2 MIPs with the saliency overlaid, row 3
  orthogonal slices through the saliency peak. `title` e.g. 'true: BL  predicted: BL (0.97)'."""
  return _view_rows(volume, saliency, _ROWS, path, title, signed, cmap, alpha)


def plot_slice_montage(
  volume,
  path: PathLike | None,
  saliency=None,
  step: int | None = None,
  ncols: int = 8,
  title: str | None = None,
  signed: bool | None = None,
  cmap: str | None = None,
  alpha: float = 0.8,
) -> Figure:
  """Every `step`-th Z slice [Y, X] of `volume` (at most 16 by default), saliency overlaid on one
  shared scale so slices can be compared."""
  vol, sal = _check_pair(volume, saliency)
  zs = montage_indices(vol.shape[0], step)
  ncols = max(1, min(ncols, len(zs)))
  nrows = -(-len(zs) // ncols)
  signed = (is_signed(sal) if sal is not None else False) if signed is None else signed
  vmax = map_scale(sal) if sal is not None else None
  panel = 1.6
  fig = new_figure(panel * ncols + 0.8, nrows * (panel * vol.shape[1] / vol.shape[2] + 0.3) + 0.4)
  axes = fig.subplots(nrows, ncols, squeeze=False)
  for i, ax in enumerate(axes.flat):
    if i >= len(zs):
      ax.axis("off")
      continue
    draw_overlay(ax, vol[zs[i]], None if sal is None else sal[zs[i]], signed, cmap, alpha, vmax)
    ax.set_title(f"z={zs[i]}", fontsize=8)
    clean_axis(ax)
  if sal is not None:
    cbar = fig.colorbar(colorbar_mappable(signed, cmap), ax=list(axes.flat), shrink=0.8)
    cbar.set_label("saliency / max |saliency|", fontsize=8)
  return finish(fig, path, title)
