"""Functional attribution for 2D and 3D CNNs in JAX: pure functions of a model and arrays.

The model is any JAX callable `f(x) -> logits [B, K]` on channels-last inputs `[B, *spatial, C]`.
`targets` is an int array `[B]` (one class per sample), None (each sample's predicted class),
an int array `[B, T]` (T classes per sample in one call: maps `[B, T, ...]`), or a function
`score(outputs) -> [B]` of the model's output, which then need not be class logits.
Maps have the input's shape; CAMs (which take the model split at a layer, `features(x) -> A`
and `head(A) -> logits`) have its spatial shape `[B, *spatial]`. Samples of a batch must be
independent (eval mode), so one backward pass gives every sample its own map. This package
imports only jax and numpy.

Example::

  import jax
  from bugnist_jax import saliency

  f = lambda x: model(x)                       # eval mode, pure: x [B, D, H, W, 1] -> [B, 12]
  grads = saliency.vanilla_gradient(f, x)      # predicted classes
  sg = saliency.smoothgrad(f, x, targets, key=jax.random.key(0), num_samples=50,
                           sigma=0.15, batch_size=5)   # 5 noisy copies in memory at a time
  ig = saliency.integrated_gradients(f, x, targets, steps=64, batch_size=8)
  cam = saliency.grad_cam(features, head, x, targets)  # [B, D, H, W]
  gbp = saliency.guided_backprop(f, x, targets)        # ReLUs rewritten in the jaxpr
  heat = saliency.to_heatmap(sg)                       # [B, D, H, W] in [0, 1]

All methods are jit-compiled with the callables and sample counts static: build `f` once and
reuse it, since a new lambda per call means a new compilation.
"""

from bugnist_jax.saliency._common import Scored
from bugnist_jax.saliency._maps import gaussian_filter, gaussian_radius, voxel_ranks
from bugnist_jax.saliency.cam import (
  SCORE_CAM_CONVENTIONS,
  grad_cam,
  grad_cam_plus_plus,
  guided_grad_cam,
  is_cam,
  layer_cam,
  score_cam,
)
from bugnist_jax.saliency.cam_variants import (
  ablation_cam,
  eigen_cam,
  grad_cam_elementwise,
  hires_cam,
  multi_layer_cam,
  x_grad_cam,
)
from bugnist_jax.saliency.complexity import complexity, sparseness
from bugnist_jax.saliency.faithfulness import deletion_curve, insertion_curve, road_impute
from bugnist_jax.saliency.gradients import (
  SMOOTHGRAD_KINDS,
  completeness_delta,
  input_x_gradient,
  integrated_gradients,
  smoothgrad,
  vanilla_gradient,
)
from bugnist_jax.saliency.guided import guided_backprop, guided_relu, rewrite_relus
from bugnist_jax.saliency.localisation import (
  ShortcutScore,
  energy_pointing_game,
  per_class_mean,
  pointing_game,
  relevance_mass_accuracy,
  relevance_rank_accuracy,
  shortcut_score,
  top_k_intersection,
)
from bugnist_jax.saliency.lrp import lrp
from bugnist_jax.saliency.lrp_rules import COMPOSITES as LRP_COMPOSITES
from bugnist_jax.saliency.lrp_rules import RULES as LRP_RULES
from bugnist_jax.saliency.occlusion import occlusion
from bugnist_jax.saliency.postprocess import (
  clip_percentile,
  normalize,
  reduce_channels,
  select_sign,
  to_heatmap,
)
from bugnist_jax.saliency.quantus_faithfulness import (
  faithfulness_correlation,
  infidelity,
  monotonicity_correlation,
)
from bugnist_jax.saliency.quantus_robustness import (
  avg_sensitivity,
  max_sensitivity,
  random_logit,
  smooth_mprt,
  smoothed,
)
from bugnist_jax.saliency.sanity import (
  cascading_randomization,
  compare_maps,
  independent_randomization,
  normal_like,
  spearman,
  ssim,
)
from bugnist_jax.saliency.shap import block_mask, feature_ablation, gradient_shap

__all__ = [
  "avg_sensitivity",
  "complexity",
  "completeness_delta",
  "faithfulness_correlation",
  "infidelity",
  "max_sensitivity",
  "monotonicity_correlation",
  "random_logit",
  "smooth_mprt",
  "smoothed",
  "sparseness",
  "top_k_intersection",
  "LRP_COMPOSITES",
  "LRP_RULES",
  "lrp",
  "SCORE_CAM_CONVENTIONS",
  "Scored",
  "ablation_cam",
  "block_mask",
  "eigen_cam",
  "feature_ablation",
  "grad_cam_elementwise",
  "gradient_shap",
  "hires_cam",
  "multi_layer_cam",
  "x_grad_cam",
  "ShortcutScore",
  "deletion_curve",
  "energy_pointing_game",
  "gaussian_filter",
  "gaussian_radius",
  "insertion_curve",
  "per_class_mean",
  "pointing_game",
  "relevance_mass_accuracy",
  "relevance_rank_accuracy",
  "road_impute",
  "shortcut_score",
  "voxel_ranks",
  "cascading_randomization",
  "compare_maps",
  "independent_randomization",
  "normal_like",
  "spearman",
  "ssim",
  "SMOOTHGRAD_KINDS",
  "clip_percentile",
  "grad_cam",
  "grad_cam_plus_plus",
  "guided_backprop",
  "guided_grad_cam",
  "guided_relu",
  "input_x_gradient",
  "integrated_gradients",
  "is_cam",
  "layer_cam",
  "normalize",
  "occlusion",
  "reduce_channels",
  "rewrite_relus",
  "score_cam",
  "select_sign",
  "smoothgrad",
  "to_heatmap",
  "vanilla_gradient",
]
