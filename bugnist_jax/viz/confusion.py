"""Confusion matrix as percent per true class (each row sums to 100, as in the BugNIST study)."""

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from bugnist_jax.viz._common import PathLike, finish, new_figure

# Above this many classes (e.g. Caltech-101) numbers in the cells are unreadable; colours only.
_MAX_ANNOTATED = 30


def _check_cm(cm) -> np.ndarray:
  cm = np.asarray(cm)
  if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
    raise ValueError(f"cm: expected a square matrix [K, K], got shape {cm.shape}")
  if np.any(cm < 0) or not np.all(np.isfinite(cm)):
    raise ValueError("cm: counts must be finite and non-negative")
  return cm.astype(np.float64)


def confusion_percent(cm) -> np.ndarray:
  """Counts [K, K] (rows = true class) -> percent of each true class [K, K].

  Rows with counts sum to 100; a class with no samples gets a row of zeros.
  """
  cm = _check_cm(cm)
  totals = cm.sum(axis=1, keepdims=True)
  return np.divide(100.0 * cm, totals, out=np.zeros_like(cm), where=totals > 0)


def plot_confusion_matrix(
  cm,
  class_names: Sequence[str],
  path: PathLike | None,
  title: str | None = None,
  percent: bool = True,
  cmap: str = "Blues",
) -> Figure:
  """Heat map of a confusion matrix with values in the cells, a colour bar and axis labels.

  Args:
    cm: counts [K, K], rows = true class, columns = predicted class.
    class_names: K names for the ticks.
    path: PNG to write, or None to only return the figure.
    percent: show percent per true class (rows sum to 100) instead of raw counts.
  """
  counts = _check_cm(cm)
  k = counts.shape[0]
  if len(class_names) != k:
    raise ValueError(f"class_names: got {len(class_names)} names for a {k}x{k} matrix")
  values = confusion_percent(counts) if percent else counts
  vmax = 100.0 if percent else max(float(values.max()), 1.0)

  side = min(max(4.0, 0.5 * k + 2.0), 24.0)
  fig = new_figure(side + 1.0, side)
  ax = fig.add_subplot()
  im = ax.imshow(values, cmap=cmap, vmin=0.0, vmax=vmax)
  cbar = fig.colorbar(im, ax=ax, shrink=0.8)
  cbar.set_label("% of true class" if percent else "count")

  fontsize = 10 if k <= 12 else (7 if k <= 20 else 5)
  ax.set_xticks(
    range(k),
    labels=list(class_names),
    rotation=90 if k > 12 else 45,
    ha="center" if k > 12 else "right",
    fontsize=fontsize,
  )
  ax.set_yticks(range(k), labels=list(class_names), fontsize=fontsize)
  ax.set_xlabel("predicted")
  ax.set_ylabel("true")
  if k <= _MAX_ANNOTATED:
    for i in range(k):
      for j in range(k):
        v = values[i, j]
        text = f"{v:.0f}" if percent or float(v).is_integer() else f"{v:.2g}"
        # White text on dark cells, black on light ones.
        color = "white" if v > 0.6 * vmax else "black"
        ax.text(j, i, text, ha="center", va="center", color=color, fontsize=fontsize)
  return finish(fig, path, title)
