"""Figures (PNG, matplotlib Agg, no pyplot state) and ImageJ TIFF export.

Imports only numpy, matplotlib and tifffile. Every `plot_*` function takes numpy arrays (anything
`np.asarray` accepts) and a PNG path (or None), and returns the matplotlib Figure.
"""

from bugnist_jax.viz.bars import plot_grouped_bars
from bugnist_jax.viz.confusion import confusion_percent, plot_confusion_matrix
from bugnist_jax.viz.curves import plot_curve_panels, plot_curves, plot_line_panels
from bugnist_jax.viz.explain import is_volume, plot_explanation, plot_method_grid, save_stack
from bugnist_jax.viz.features import feature_panels, plot_feature_maps
from bugnist_jax.viz.filters import filter_panels, plot_filters
from bugnist_jax.viz.html import HtmlReport
from bugnist_jax.viz.overlay import (
  plot_overlay,
  plot_overlay_grid,
  plot_saliency_grid,
  saliency_rgba,
)
from bugnist_jax.viz.patches import plot_patch_grid
from bugnist_jax.viz.projections import (
  max_projections,
  montage_indices,
  orthogonal_slices,
  peak_index,
  peak_slices,
)
from bugnist_jax.viz.sweep import plot_map_grid, plot_sigma_sweep
from bugnist_jax.viz.tiff import save_imagej_channels, save_imagej_stack
from bugnist_jax.viz.volume import (
  plot_explanation_panel,
  plot_mips,
  plot_ortho_slices,
  plot_slice_montage,
)

__all__ = [
  "HtmlReport",
  "confusion_percent",
  "feature_panels",
  "filter_panels",
  "is_volume",
  "max_projections",
  "montage_indices",
  "orthogonal_slices",
  "peak_index",
  "peak_slices",
  "plot_confusion_matrix",
  "plot_curve_panels",
  "plot_curves",
  "plot_explanation",
  "plot_explanation_panel",
  "plot_feature_maps",
  "plot_filters",
  "plot_grouped_bars",
  "plot_line_panels",
  "plot_map_grid",
  "plot_method_grid",
  "plot_mips",
  "plot_ortho_slices",
  "plot_overlay",
  "plot_overlay_grid",
  "plot_patch_grid",
  "plot_saliency_grid",
  "plot_sigma_sweep",
  "plot_slice_montage",
  "save_imagej_channels",
  "save_imagej_stack",
  "save_stack",
  "saliency_rgba",
]
