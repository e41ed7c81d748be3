"""Loss terms added to cross-entropy, selected by config.train.extra_loss.

Each is fn(model, inputs [B, *spatial, C] float32, batch, outputs) -> scalar, weighted by
config.train.extra_loss_weight; `outputs` are the model's stage outputs of this step by name
(a saliency branch's map among them), so a loss never runs the model again to read them.
"""

import jax
import jax.numpy as jnp

from bugnist_jax.errors import UserError
from bugnist_jax.models.adapters import eval_view


def right_for_the_right_reasons(
  model, inputs: jax.Array, batch: dict, outputs: dict | None = None
) -> jax.Array:
  """Ross et al. 2017: squared input gradients of the summed log-probabilities outside the
  object (where batch['object_mask'] [B, *spatial] is 0), summed per sample, averaged over the
  batch.

  The gradient is taken in inference mode, so batch-norm statistics and dropout draws are
  not touched twice per step; its parameters' gradient flows through it (double backprop).
  """
  del outputs  # the penalty needs input gradients, which the forward outputs do not hold
  if "object_mask" not in batch:
    raise UserError(
      "config.train.extra_loss=right_reasons needs object masks: use a synthetic source or "
      "set config.data.mask_from_threshold=True (mask = largest component above "
      "config.data.packing_threshold)"
    )
  view = eval_view(model)
  grads = jax.grad(lambda x: jnp.sum(jax.nn.log_softmax(view(x))))(inputs)
  outside = 1.0 - batch["object_mask"].astype(inputs.dtype)[..., None]
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
