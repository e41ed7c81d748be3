"""Loss terms added to cross-entropy, selected by config.train.extra_loss."""

from bugnist_jax.errors import UserError

# name -> fn(model, inputs [B, *spatial, C] float32, batch) -> scalar
EXTRA_LOSSES: dict = {}


def get_extra_loss(name: str):
  """The extra loss registered as `name`; '' means none."""
  if not name:
    return None
  if name not in EXTRA_LOSSES:
    valid = ", ".join(sorted(EXTRA_LOSSES)) or "(none registered)"
    raise UserError(f"config.train.extra_loss: unknown {name!r}; valid: {valid}")
  return EXTRA_LOSSES[name]
