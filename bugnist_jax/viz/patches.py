"""A captioned grid of image patches, e.g. the maximally activating patches per class."""

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from bugnist_jax.viz._common import PathLike, as_image, clean_axis, finish, new_figure


def plot_patch_grid(
  rows: Sequence[Sequence[np.ndarray]],
  path: PathLike | None,
  captions: Sequence[Sequence[str]] | None = None,
  row_labels: Sequence[str] | None = None,
  title: str | None = None,
) -> Figure:
  """Rows of patches [h, w], [h, w, 1] or [h, w, 3] (uint8 as is, floats min-max scaled).

  Rows may have different lengths; `captions` mirrors `rows`, `row_labels` names each row
  (e.g. the class).
  """
  if not rows or not any(len(r) for r in rows):
    raise ValueError("rows: need at least one patch")
  if captions is not None and [len(c) for c in captions] != [len(r) for r in rows]:
    raise ValueError("captions: must have the same shape as rows (one caption per patch)")
  if row_labels is not None and len(row_labels) != len(rows):
    raise ValueError(f"row_labels: got {len(row_labels)} labels for {len(rows)} rows")
  ncols = max(len(r) for r in rows)
  panel = 1.4
  fig = new_figure(panel * ncols + (0.8 if row_labels else 0.0), (panel + 0.3) * len(rows) + 0.3)
  axes = fig.subplots(len(rows), ncols, squeeze=False)
  for r, row in enumerate(rows):
    for c in range(ncols):
      ax = axes[r, c]
      clean_axis(ax)
      if c >= len(row):
        ax.axis("off")
        continue
      img = as_image(row[c], f"rows[{r}][{c}]")
      ax.imshow(
        img, cmap="gray" if img.ndim == 2 else None, vmin=0.0, vmax=1.0, interpolation="nearest"
      )
      if captions is not None:
        ax.set_title(captions[r][c], fontsize=7)
    if row_labels is not None:
      axes[r, 0].set_ylabel(row_labels[r], fontsize=9, rotation=0, ha="right", va="center")
  return finish(fig, path, title)
