"""Loss terms added to cross-entropy, selected by config.train.extra_loss.

Each is fn(model, inputs [B, *spatial, C] float32, batch) -> scalar, weighted by
config.train.extra_loss_weight.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from bugnist_jax.errors import UserError


def right_for_the_right_reasons(model, inputs: jax.Array, batch: dict) -> jax.Array:
  """Ross et al. 2017: squared input gradients of the summed log-probabilities outside the
  object (where batch['mask'] [B, *spatial] is 0), summed per sample, averaged over the batch.

  The gradient is taken in inference mode, so batch-norm statistics and dropout draws are
  not touched twice per step; its parameters' gradient flows through it (double backprop).
  """
  if "mask" not in batch:
    raise UserError(
      "config.train.extra_loss=right_reasons needs object masks: use a synthetic source or "
      "set config.data.mask_from_threshold=True (mask = largest component above "
      "config.data.packing_threshold)"
    )
  view = nnx.view(model, deterministic=True, use_running_average=True, raise_if_not_found=False)
  grads = jax.grad(lambda x: jnp.sum(jax.nn.log_softmax(view(x))))(inputs)
  outside = 1.0 - batch["mask"].astype(inputs.dtype)[..., None]
  per_sample = jnp.sum((grads * outside) ** 2, axis=tuple(range(1, grads.ndim)))
  return jnp.mean(per_sample)


EXTRA_LOSSES = {"right_reasons": right_for_the_right_reasons}


def get_extra_loss(name: str):
  """The extra loss registered as `name`; '' means none."""
  if not name:
    return None
  if name not in EXTRA_LOSSES:
    raise UserError(
      f"config.train.extra_loss: unknown {name!r}; valid: {', '.join(sorted(EXTRA_LOSSES))}"
    )
  return EXTRA_LOSSES[name]
