"""Looking inside a trained CNN: feature maps, receptive fields, maximally activating patches,
feature visualisations (cached in the workdir).

Works for every staged model (2D and 3D) through the model contract; imports jax, numpy and
our models, data, runs, attribution, saliency, featurevis and viz.
"""

from bugnist_jax.inspection.features import feature_maps, save_feature_maps
from bugnist_jax.inspection.filters import save_filters, stage_filters
from bugnist_jax.inspection.patches import Scan, crop, scan_channels, scan_source, top_patches
from bugnist_jax.inspection.receptive_field import Field, receptive_fields
from bugnist_jax.inspection.report import LookInsideRequest, look_inside
from bugnist_jax.inspection.visualization import VisOptions, Visualizations, stage_visualizations
from bugnist_jax.inspection.visualization_figures import FeatureVisRequest, write_visualizations

__all__ = [
  "FeatureVisRequest",
  "Field",
  "LookInsideRequest",
  "Scan",
  "crop",
  "feature_maps",
  "look_inside",
  "receptive_fields",
  "save_feature_maps",
  "save_filters",
  "scan_channels",
  "scan_source",
  "stage_visualizations",
  "stage_filters",
  "top_patches",
  "VisOptions",
  "Visualizations",
  "write_visualizations",
]
