"""Shared helpers: input checks, figure creation and saving (Agg only, no pyplot state)."""

import os
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

# 150 dpi: crisp enough for reports, small enough (~100-300 kB) for many figures per run.
DPI = 150
PathLike = str | os.PathLike


def new_figure(width: float, height: float, layout: str | None = "constrained") -> Figure:
  """A Figure not registered with pyplot (garbage collected, no global state), in inches;
  `layout=None` for figures that place their axes themselves (`add_axes_inches`)."""
  return Figure(figsize=(width, height), layout=layout)


def add_axes_inches(fig: Figure, left: float, bottom: float, width: float, height: float) -> Axes:
  """An axes at a fixed place, in inches from the figure's lower left corner."""
  w, h = fig.get_size_inches()
  return fig.add_axes((left / w, bottom / h, width / w, height / h))


def finish(
  fig: Figure, path: PathLike | None, title: str | None, dpi: int = DPI, tight: bool = True
) -> Figure:
  """Adds the title, writes a PNG to `path` (parents created) when given, returns the figure.

  `tight`: crop to what was drawn (bbox_inches='tight'), so long tick labels and titles are
  never cut off; it costs a second draw. Figures laid out in fixed inches pass False."""
  if title:
    fig.suptitle(title, fontsize=12)
  if path is not None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight" if tight else None, facecolor="white")
  return fig


def as_volume(x, name: str) -> np.ndarray:
  """[Z, Y, X] or [Z, Y, X, 1] -> float [Z, Y, X]; ValueError naming `name` otherwise."""
  x = np.asarray(x)
  if x.ndim == 4 and x.shape[-1] == 1:
    x = x[..., 0]
  if x.ndim != 3 or 0 in x.shape:
    raise ValueError(f"{name}: expected a volume [Z, Y, X] or [Z, Y, X, 1], got shape {x.shape}")
  return x.astype(np.float32)


def as_image(x, name: str) -> np.ndarray:
  """[H, W], [H, W, 1] or [H, W, 3] -> float [H, W] or [H, W, 3] scaled to [0, 1] for display."""
  x = np.asarray(x)
  if x.ndim == 3 and x.shape[-1] == 1:
    x = x[..., 0]
  if not (x.ndim == 2 or (x.ndim == 3 and x.shape[-1] == 3)) or 0 in x.shape:
    raise ValueError(f"{name}: expected an image [H, W] or [H, W, 3], got shape {x.shape}")
  # uint8 keeps its absolute scale; float inputs are usually standardised, so min-max them.
  return x / 255.0 if x.dtype == np.uint8 else normalize01(x)


def as_map2d(m, name: str, shape: tuple[int, int] | None = None) -> np.ndarray:
  """[H, W] or [H, W, C] -> [H, W] (channels summed, which keeps the sign of signed maps)."""
  m = np.asarray(m, dtype=np.float32)
  if m.ndim == 3:
    m = m.sum(axis=-1)
  if m.ndim != 2:
    raise ValueError(f"{name}: expected a map [H, W] or [H, W, C], got shape {m.shape}")
  if shape is not None and m.shape != tuple(shape):
    raise ValueError(f"{name}: map shape {m.shape} does not match image shape {tuple(shape)}")
  return m


def normalize01(x: np.ndarray) -> np.ndarray:
  """Min-max scaling to [0, 1]; a constant array maps to zeros."""
  x = np.asarray(x, dtype=np.float32)
  lo, hi = float(np.min(x)), float(np.max(x))
  return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def clean_axis(ax: Axes, xlabel: str | None = None, ylabel: str | None = None) -> None:
  """No ticks (pixel indices add clutter), optional small axis-name labels."""
  ax.set_xticks([])
  ax.set_yticks([])
  if xlabel:
    ax.set_xlabel(xlabel, fontsize=8, labelpad=1)
  if ylabel:
    ax.set_ylabel(ylabel, fontsize=8, labelpad=1)
