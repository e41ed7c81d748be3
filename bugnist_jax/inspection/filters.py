"""Filters as images: every stage that exposes some (`Stage.filters`, e.g. the precortical
front-end's learned 7x7 convs, its fixed DoG, LeNet's c1) drawn with each filter's sum."""

import pathlib

import numpy as np

from bugnist_jax import viz
from bugnist_jax.models.staged import StagedModel


def stage_filters(model: StagedModel) -> dict[str, np.ndarray]:
  """{'<stage>' or '<stage>.<name>': kernel [*k, Cin, Cout]} of every trunk and branch stage
  that exposes filters, in forward order."""
  out = {}
  for stage in (*model.layer_names, *model.branches):
    shown = model.stage(stage).filters()
    for name, kernel in shown.items():
      out[stage if len(shown) == 1 else f"{stage}.{name}"] = np.asarray(kernel)
  return out


def save_filters(
  model: StagedModel, out_dir: str | pathlib.Path, title: str = "", max_filters: int = 36
) -> list[pathlib.Path]:
  """One `viz.plot_filters` figure per exposed filter bank: `out_dir/filters_<stage>.png`."""
  paths = []
  for name, kernel in stage_filters(model).items():
    path = pathlib.Path(out_dir) / f"filters_{name}.png"
    count = kernel.shape[-2] * kernel.shape[-1]
    shown = f" (first {max_filters} of {count})" if count > max_filters else ""
    size = "x".join(map(str, kernel.shape[:-2]))
    viz.plot_filters(
      kernel, path, title=f"{title}{name}: {size} filters{shown}", max_filters=max_filters
    )
    paths.append(path)
  return paths
