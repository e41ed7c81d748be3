"""Line plots of metric curves: deletion/insertion, sanity-check randomisation, scaling plots."""

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from bugnist_jax.viz._common import PathLike, finish, new_figure


def _draw_curves(ax, x, curves: Mapping[str, np.ndarray], markers: bool = True) -> None:
  """One line per curve on `ax`; a value array [R, N] is its mean with a +- 1 std band."""
  x = np.asarray(x, dtype=np.float64)
  if x.ndim != 1 or x.size == 0:
    raise ValueError(f"x: expected a 1D array [N], got shape {x.shape}")
  if not curves:
    raise ValueError("curves: need at least one curve")
  for name, y in curves.items():
    y = np.asarray(y, dtype=np.float64)
    if y.ndim not in (1, 2) or y.shape[-1] != x.size:
      raise ValueError(f"curves[{name!r}]: expected [{x.size}] or [R, {x.size}], got {y.shape}")
    mean = y if y.ndim == 1 else y.mean(axis=0)
    (line,) = ax.plot(x, mean, marker="o" if markers else None, ms=3, label=name)
    if y.ndim == 2 and y.shape[0] > 1:
      sd = y.std(axis=0)
      ax.fill_between(x, mean - sd, mean + sd, color=line.get_color(), alpha=0.2, lw=0)
  ax.grid(True, alpha=0.3)
  ax.legend(fontsize=8)


def plot_curves(
  x,
  curves: Mapping[str, np.ndarray],
  path: PathLike | None,
  xlabel: str = "",
  ylabel: str = "",
  title: str | None = None,
  logx: bool = False,
  logy: bool = False,
  markers: bool = True,
) -> Figure:
  """One line per entry of `curves` (name -> values) against the shared `x` [N].

  A value array [R, N] (R runs, e.g. one deletion curve per image) is drawn as its mean with a
  shaded band of +- one standard deviation.
  """
  fig = new_figure(6.0, 4.0)
  ax = fig.add_subplot()
  _draw_curves(ax, x, curves, markers)
  ax.set_xscale("log" if logx else "linear")
  ax.set_yscale("log" if logy else "linear")
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  return finish(fig, path, title)


def plot_curve_panels(
  panels: Mapping[str, tuple[np.ndarray, Mapping[str, np.ndarray]]],
  path: PathLike | None,
  ylabel: str = "",
  title: str | None = None,
  ylim: tuple[float, float] | None = None,
) -> Figure:
  """`panels[xlabel] = (x [N], {line: values [N] or [R, N]})`, one `plot_curves`-style panel
  each, side by side (e.g. accuracy against mu and against sigma)."""
  if not panels:
    raise ValueError("panels: need at least one panel")
  fig = new_figure(5.0 * len(panels), 4.0)
  axes = fig.subplots(1, len(panels), squeeze=False)[0]
  for ax, (xlabel, (x, curves)) in zip(axes, panels.items(), strict=True):
    _draw_curves(ax, x, curves)
    ax.set_xlabel(xlabel)
    if ylim is not None:
      ax.set_ylim(*ylim)
  axes[0].set_ylabel(ylabel)
  return finish(fig, path, title)


def plot_line_panels(
  x_labels,
  panels: Mapping[str, Mapping[str, np.ndarray]],
  path: PathLike | None,
  xlabel: str = "",
  title: str | None = None,
  ylim: tuple[float, float] | None = None,
) -> Figure:
  """`panels[panel][line]` -> values [N] against categorical `x_labels` [N], one panel each
  (e.g. similarity to the trained model's maps, per method, as layers are randomised)."""
  if not panels:
    raise ValueError("panels: need at least one panel")
  steps = np.arange(len(x_labels))
  fig = new_figure(5.0 * len(panels), 4.0)
  axes = fig.subplots(1, len(panels), squeeze=False)[0]
  for ax, (name, lines) in zip(axes, panels.items(), strict=True):
    for line, values in lines.items():
      ax.plot(steps, np.asarray(values, float), marker="o", ms=3, label=line)
    ax.set_xticks(steps, list(x_labels), rotation=45, fontsize=8)
    if ylim is not None:
      ax.set_ylim(*ylim)
    ax.set_title(name)
    ax.set_xlabel(xlabel)
    ax.grid(True, alpha=0.3)
  axes[0].legend(fontsize=8)
  return finish(fig, path, title)
