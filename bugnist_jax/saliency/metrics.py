"""Attribution-quality metrics: localisation, shortcut share and faithfulness (deletion/insertion).

Conventions shared by every function here:
- maps are `[B, *spatial]` (2D `[B, H, W]` or 3D `[B, D, H, W]`); a map with a channel axis is
  reduced by the caller first (e.g. `jnp.abs(m).sum(-1)`), masks are `[B, *spatial]` bool/0-1;
- inputs `x` of the faithfulness curves are channels-last `[B, *spatial, C]`;
- every score is per sample, `[B]` floats; undefined scores (an empty mask, a map without any
  relevance) are nan, so aggregate with `jnp.nanmean` or `per_class_mean` (which skips nan);
- everything is `jax.jit`-compiled (or jittable when a model function is passed);
- ties: `voxel_ranks` (the deletion/insertion order) breaks ties by a seeded random
  permutation per sample, not by flat index (which would favour the first slices);
  `relevance_rank_accuracy` gives tied voxels averaged credit; `pointing_game` takes `ties=`.

Bad arguments (shapes, option names) raise ValueError: this package imports only jax and numpy.
"""

from bugnist_jax.saliency._maps import gaussian_filter, voxel_ranks
from bugnist_jax.saliency.faithfulness import deletion_curve, insertion_curve, road_impute
from bugnist_jax.saliency.localisation import (
  ShortcutScore,
  energy_pointing_game,
  per_class_mean,
  pointing_game,
  relevance_mass_accuracy,
  relevance_rank_accuracy,
  shortcut_score,
)

__all__ = [
  "ShortcutScore",
  "deletion_curve",
  "energy_pointing_game",
  "gaussian_filter",
  "insertion_curve",
  "per_class_mean",
  "pointing_game",
  "relevance_mass_accuracy",
  "relevance_rank_accuracy",
  "road_impute",
  "shortcut_score",
  "voxel_ranks",
]
