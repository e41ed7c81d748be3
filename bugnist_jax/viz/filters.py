"""Convolution filters as images, each captioned with its sum (a centre-surround filter sums to
about zero: it answers to contrast, not to the light level)."""

import numpy as np
from matplotlib.figure import Figure

from bugnist_jax.viz._common import PathLike, clean_axis, finish, new_figure


def filter_panels(kernel, max_filters: int = 36):
  """A kernel [*k, Cin, Cout] (2D or 3D) -> (labels 'in->out' [N], panels [N, kh, kw], sums [N]).

  Panels run over (out, in) pairs, out-major, up to `max_filters`; a 3D kernel shows its middle
  slice along the first axis, and its sum is over the whole kernel.
  """
  k = np.asarray(kernel, np.float32)
  if k.ndim not in (4, 5):
    raise ValueError(
      f"kernel: expected [kh, kw, Cin, Cout] or [kd, kh, kw, Cin, Cout], got {k.shape}"
    )
  if max_filters < 1:
    raise ValueError(f"max_filters: must be >= 1, got {max_filters}")
  cin, cout = k.shape[-2:]
  pairs = [(i, o) for o in range(cout) for i in range(cin)][:max_filters]
  shown = k[k.shape[0] // 2] if k.ndim == 5 else k
  labels = [f"{i}->{o}" for i, o in pairs]
  panels = np.stack([shown[..., i, o] for i, o in pairs])
  sums = np.array([k[..., i, o].sum() for i, o in pairs], np.float64)
  return labels, panels, sums


def plot_filters(
  kernel,
  path: PathLike | None,
  title: str | None = None,
  max_filters: int = 36,
  cmap: str = "RdBu_r",
) -> Figure:
  """One panel per filter of `kernel` [*k, Cin, Cout] (see `filter_panels`), on a diverging
  colour map centred on zero (red positive, blue negative), captioned with the channel pair and
  the filter's sum."""
  labels, panels, sums = filter_panels(kernel, max_filters)
  n = len(labels)
  ncols = min(6, n)
  nrows = -(-n // ncols)
  fig = new_figure(1.6 * ncols, 1.8 * nrows + 0.3)
  axes = fig.subplots(nrows, ncols, squeeze=False)
  for i, ax in enumerate(axes.flat):
    if i >= n:
      ax.axis("off")
      continue
    limit = float(np.abs(panels[i]).max()) or 1.0
    ax.imshow(panels[i], cmap=cmap, vmin=-limit, vmax=limit, interpolation="nearest")
    ax.set_title(f"{labels[i]}  sum {sums[i]:+.3f}", fontsize=7)
    clean_axis(ax)
  return finish(fig, path, title)
