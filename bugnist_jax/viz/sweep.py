"""Grids of saliency MIPs: one row per volume, one column per setting (e.g. SmoothGrad sigma)."""

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from bugnist_jax.viz._common import PathLike, as_volume, clean_axis, finish, new_figure, normalize01
from bugnist_jax.viz.projections import AXIS_NAMES, VIEW_AXES, oriented, project


def plot_map_grid(
  volumes: np.ndarray | Sequence[np.ndarray],
  maps: Sequence[np.ndarray] | Sequence[Sequence[np.ndarray]],
  column_titles: Sequence[str],
  path: PathLike | None,
  title: str | None = None,
  row_labels: Sequence[str] | None = None,
  axis: int = 2,
  cmap: str = "inferno",
) -> Figure:
  """Rows: volumes; columns: the input's MIP, then the MIP of |map| for each setting.

  Args:
    volumes: one volume [Z, Y, X] (an ndarray), or a list of N volumes.
    maps: per setting a map [Z, Y, X] for one volume, or per volume such a list (N x S).
    column_titles: S titles, one per setting.
    axis: projection axis (default 2 = along X, a side view with Z running left to right).
    Each map cell is scaled to its own maximum: settings differ in overall magnitude, and the
    point of a sweep is how the pattern changes.
  """
  if isinstance(volumes, np.ndarray):
    volumes, maps = [volumes], [maps]
  if len(maps) != len(volumes):
    raise ValueError(f"maps: got {len(maps)} rows of maps for {len(volumes)} volumes")
  if row_labels is not None and len(row_labels) != len(volumes):
    raise ValueError(f"row_labels: got {len(row_labels)} labels for {len(volumes)} volumes")
  if axis not in VIEW_AXES:
    raise ValueError(f"axis: must be 0, 1 or 2, got {axis}")
  ncols = len(column_titles) + 1
  rows = []
  for i, (vol, row) in enumerate(zip(volumes, maps, strict=True)):
    vol = as_volume(vol, f"volumes[{i}]")
    if len(row) != len(column_titles):
      raise ValueError(f"maps[{i}]: got {len(row)} maps for {len(column_titles)} columns")
    ms = [as_volume(m, f"maps[{i}][{j}]") for j, m in enumerate(row)]
    if any(m.shape != vol.shape for m in ms):
      raise ValueError(f"maps[{i}]: map shapes must equal the volume shape {vol.shape}")
    rows.append([project(vol, axis)] + [project(np.abs(m), axis) for m in ms])

  col_ax, row_ax = VIEW_AXES[axis]
  h, w = oriented(rows[0][0], axis).shape
  panel_w = min(2.4, 14.0 / ncols)
  fig = new_figure(panel_w * ncols + 0.4, len(rows) * (panel_w * h / w + 0.35) + 0.3)
  axes = fig.subplots(len(rows), ncols, squeeze=False)
  for r, row in enumerate(rows):
    for c, view in enumerate(row):
      ax = axes[r, c]
      ax.imshow(
        normalize01(oriented(view, axis)),
        cmap="gray" if c == 0 else cmap,
        vmin=0.0,
        vmax=1.0,
        interpolation="nearest",
      )
      clean_axis(ax)
      if r == 0:
        ax.set_title("input" if c == 0 else column_titles[c - 1], fontsize=9)
    ylabel = row_labels[r] if row_labels is not None else ""
    axes[r, 0].set_ylabel(
      ylabel or f"{AXIS_NAMES[row_ax]} (MIP along {AXIS_NAMES[axis]})", fontsize=8
    )
    axes[-1, 0].set_xlabel(AXIS_NAMES[col_ax], fontsize=8)
  return finish(fig, path, title)


def plot_sigma_sweep(
  volumes: np.ndarray | Sequence[np.ndarray],
  maps: Sequence[np.ndarray] | Sequence[Sequence[np.ndarray]],
  sigmas: Sequence[float],
  path: PathLike | None,
  title: str | None = None,
  row_labels: Sequence[str] | None = None,
  axis: int = 2,
) -> Figure:
  """SmoothGrad sigma sweep as in the BugNIST study: columns 'input', 'sigma=0.05', ...

  `maps[i][j]` is the map [Z, Y, X] of volume i at `sigmas[j]` (see `plot_map_grid`).
  """
  titles = [f"sigma={s:g}" for s in sigmas]
  return plot_map_grid(volumes, maps, titles, path, title, row_labels, axis)
