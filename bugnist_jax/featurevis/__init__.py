"""Feature visualisation by activation maximisation for 2D and 3D CNNs, in JAX.

`features` is any function `x [B, *input_shape] -> [B, *spatial', C']` (a model cut at a
stage) or `[B, K]` (logits); image i maximises the spatial mean of channel `channels[i]`
('channel'), its value at one position ('neuron') or a logit ('class'). Many channels are
optimised as one batch inside one compiled program, in chunks of `batch_size` channels; the
result does not depend on the chunk size. This package imports only jax, optax and numpy.

Example::

  import jax
  from bugnist_jax import featurevis

  features = lambda x: model.forward(x, stop="block2")[0]        # [B, 8, 4, 4, 32]
  images = featurevis.maximize(
      features, (64, 32, 32, 1), channels=range(32), key=jax.random.key(0),
      steps=256, parameterization="fourier", batch_size=16,
      transforms=featurevis.Transforms(roll=4, flip_axes=(0, 1, 2)),
      l2=1e-3, tv=1e-3)                                           # [32, 64, 32, 32, 1]
  out = featurevis.visualize(features, (64, 32, 32, 1), [3], key=jax.random.key(0))
  out.activation, out.history                                     # [1], [256, 1]

Build `features` once and reuse it: the compiled program is cached per function.
"""

from bugnist_jax.featurevis.image import PARAMETERIZATIONS, ImageParam, color_correlation
from bugnist_jax.featurevis.objectives import OBJECTIVES, objective
from bugnist_jax.featurevis.optimize import OPTIMIZERS, Result, maximize, visualize
from bugnist_jax.featurevis.spectral import high_frequency_share, kernel_high_frequency_share
from bugnist_jax.featurevis.transforms import Transforms, default_transforms

__all__ = [
  "OBJECTIVES",
  "OPTIMIZERS",
  "PARAMETERIZATIONS",
  "ImageParam",
  "Result",
  "Transforms",
  "color_correlation",
  "default_transforms",
  "high_frequency_share",
  "kernel_high_frequency_share",
  "maximize",
  "objective",
  "visualize",
]
