"""Grouped bar charts: one panel per metric, groups along x, one bar per series in a group."""

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from bugnist_jax.viz._common import PathLike, finish, new_figure


def plot_grouped_bars(
  panels: Mapping[str, Mapping[str, Mapping[str, float]]],
  path: PathLike | None,
  title: str | None = None,
  ylim: tuple[float, float] | None = (0.0, 1.0),
) -> Figure:
  """`panels[metric][group][series]` -> one panel per metric; e.g. metric = shortcut score,
  group = saliency method, series = model. Every group of a panel has the same series."""
  if not panels:
    raise ValueError("panels: need at least one metric")
  fig = new_figure(4.2 * len(panels), 3.6)
  axes = fig.subplots(1, len(panels), squeeze=False)[0]
  for ax, (metric, groups) in zip(axes, panels.items(), strict=True):
    names = list(groups)
    series = list(next(iter(groups.values())))
    width = 0.8 / max(len(series), 1)
    for i, s in enumerate(series):
      offset = (i - (len(series) - 1) / 2) * width
      ax.bar(np.arange(len(names)) + offset, [groups[g][s] for g in names], width, label=s)
    ax.set_xticks(np.arange(len(names)), [n.replace("_", "\n") for n in names], fontsize=8)
    if ylim is not None:
      ax.set_ylim(*ylim)
    ax.set_title(metric.replace("_", " "))
    ax.grid(True, axis="y", alpha=0.3)
  axes[0].legend(fontsize=8)
  return finish(fig, path, title)
