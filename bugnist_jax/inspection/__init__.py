"""Looking inside a trained CNN: feature maps, receptive fields, maximally activating patches.

Works for every staged model (2D and 3D); imports jax, numpy and our models, data and viz.
"""

from bugnist_jax.inspection.features import (
  conv_layers,
  feature_maps,
  save_feature_maps,
  stage_function,
)
from bugnist_jax.inspection.patches import Scan, crop, scan_source, top_patches
from bugnist_jax.inspection.receptive_field import Field, receptive_fields, stage_ops
from bugnist_jax.inspection.report import look_inside

__all__ = [
  "Field",
  "Scan",
  "conv_layers",
  "crop",
  "feature_maps",
  "look_inside",
  "receptive_fields",
  "save_feature_maps",
  "scan_source",
  "stage_function",
  "stage_ops",
  "top_patches",
]
