"""Looking inside a trained CNN: feature maps, receptive fields, maximally activating patches.

Works for every staged model (2D and 3D) through the model contract; imports jax, numpy and
our models, data and viz.
"""

from bugnist_jax.inspection.features import feature_maps, save_feature_maps
from bugnist_jax.inspection.filters import save_filters, stage_filters
from bugnist_jax.inspection.patches import Scan, crop, scan_source, top_patches
from bugnist_jax.inspection.receptive_field import Field, receptive_fields
from bugnist_jax.inspection.report import LookInsideRequest, look_inside

__all__ = [
  "Field",
  "LookInsideRequest",
  "Scan",
  "crop",
  "feature_maps",
  "look_inside",
  "receptive_fields",
  "save_feature_maps",
  "save_filters",
  "scan_source",
  "stage_filters",
  "top_patches",
]
