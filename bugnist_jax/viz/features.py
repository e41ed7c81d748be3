"""Feature maps (activations) of one layer as a grid of per-channel panels."""

import numpy as np
from matplotlib.figure import Figure

from bugnist_jax.viz._common import PathLike, clean_axis, finish, new_figure, normalize01


def feature_panels(acts, max_channels: int = 32, mode: str = "mip", order: str = "index"):
  """Activations -> (channel indices [N], panels [N, h, w]) for display.

  Args:
    acts: one example's activations, 2D [H, W, C] or 3D [D, H, W, C] (no batch axis).
    mode: for 3D, 'mip' (max over D) or 'middle' (the slice at D // 2).
    order: 'index' (channels 0, 1, ...) or 'strongest' (largest mean activation first, since
      after a ReLU many channels can be dead).
  """
  a = np.asarray(acts, dtype=np.float32)
  if a.ndim == 4:
    if mode not in ("mip", "middle"):
      raise ValueError(f"mode: must be 'mip' or 'middle', got {mode!r}")
    a = a.max(axis=0) if mode == "mip" else a[a.shape[0] // 2]
  elif a.ndim != 3:
    raise ValueError(f"acts: expected [H, W, C] or [D, H, W, C], got shape {a.shape}")
  if order not in ("index", "strongest"):
    raise ValueError(f"order: must be 'index' or 'strongest', got {order!r}")
  if max_channels < 1:
    raise ValueError(f"max_channels: must be >= 1, got {max_channels}")
  c = a.shape[-1]
  idx = np.argsort(-a.mean(axis=(0, 1)), kind="stable") if order == "strongest" else np.arange(c)
  idx = idx[:max_channels]
  return idx, np.moveaxis(a[..., idx], -1, 0)


def plot_feature_maps(
  acts,
  path: PathLike | None,
  title: str | None = None,
  max_channels: int = 32,
  mode: str = "mip",
  order: str = "index",
  cmap: str = "viridis",
) -> Figure:
  """One panel per channel (up to `max_channels`), each scaled to its own range, captioned with
  the channel index and its maximum. Arguments as in `feature_panels`."""
  idx, panels = feature_panels(acts, max_channels, mode, order)
  n = len(idx)
  ncols = min(8, n)
  nrows = -(-n // ncols)
  h, w = panels.shape[1:]
  panel = 1.5
  fig = new_figure(panel * ncols, nrows * (panel * h / w + 0.3) + 0.3)
  axes = fig.subplots(nrows, ncols, squeeze=False)
  for i, ax in enumerate(axes.flat):
    if i >= n:
      ax.axis("off")
      continue
    ax.imshow(normalize01(panels[i]), cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_title(f"c{idx[i]} max {panels[i].max():.3g}", fontsize=7)
    clean_axis(ax)
  return finish(fig, path, title)
