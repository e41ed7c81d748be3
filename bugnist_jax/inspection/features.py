"""Feature maps: every spatial stage's activations for one input, and a figure grid per layer."""

import pathlib

import jax
import numpy as np
from flax import nnx

from bugnist_jax import viz
from bugnist_jax.models.adapters import eval_view
from bugnist_jax.models.staged import StagedModel


def feature_maps(model: StagedModel, x: jax.Array, layers=None) -> dict[str, np.ndarray]:
  """Activations of `layers` (default: every spatial stage) for normalised input x [B, *S, C].

  Returns name -> [B, *S', C'] numpy arrays, in eval mode.
  """
  layers = model.spatial_layers() if layers is None else list(layers)
  if not layers:
    return {}
  last = max(layers, key=model.index)
  graphdef, state = nnx.split(eval_view(model))
  # One compiled forward rather than op-by-op dispatch: the CPU convolutions (models/planes.py)
  # are hundreds of small ops, each compiled on its first eager call (seconds at tiny sizes).
  run = jax.jit(lambda s, v: nnx.merge(graphdef, s).forward(v, stop=last, branches=False)[1])
  outputs = run(state, x)
  return {name: np.asarray(outputs[name]) for name in layers}


def save_feature_maps(
  model: StagedModel,
  x: jax.Array,
  out_dir: str | pathlib.Path,
  title: str = "",
  max_channels: int = 32,
) -> list[pathlib.Path]:
  """One `viz.plot_feature_maps` figure per spatial stage for input x [1, *S, C] (3D as MIPs).

  Files are `out_dir/features_<layer>.png`; returns their paths.
  """
  out_dir = pathlib.Path(out_dir)
  paths = []
  for name, acts in feature_maps(model, x).items():
    path = out_dir / f"features_{name}.png"
    viz.plot_feature_maps(
      acts[0],
      path,
      title=f"{title}{name}: {'x'.join(map(str, acts.shape[1:]))}",
      max_channels=max_channels,
    )
    paths.append(path)
  return paths
