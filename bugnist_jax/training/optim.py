"""optax optimizer and learning-rate schedule from config.train."""

import optax

from bugnist_jax.errors import UserError


def learning_rate_schedule(cfg, steps_per_epoch: int) -> optax.Schedule:
  total = max(cfg.num_epochs * steps_per_epoch, 1)
  if cfg.schedule == "constant":
    return optax.constant_schedule(cfg.learning_rate)
  if cfg.schedule == "cosine":
    warmup = min(int(cfg.warmup_epochs * steps_per_epoch), total - 1)
    return optax.warmup_cosine_decay_schedule(
      0.0, cfg.learning_rate, warmup_steps=warmup, decay_steps=total, end_value=0.0
    )
  raise UserError(f"config.train.schedule: unknown {cfg.schedule!r}; valid: cosine, constant")


def make_optimizer(cfg, steps_per_epoch: int) -> optax.GradientTransformation:
  """The optimizer of config.train `cfg`, with optional global-norm clipping."""
  lr = learning_rate_schedule(cfg, steps_per_epoch)
  if cfg.optimizer == "adam":
    tx = optax.adam(lr)
  elif cfg.optimizer == "adamw":
    tx = optax.adamw(lr, weight_decay=cfg.weight_decay)
  elif cfg.optimizer == "sgd":
    tx = optax.sgd(lr, momentum=cfg.momentum, nesterov=True)
  else:
    raise UserError(f"config.train.optimizer: unknown {cfg.optimizer!r}; valid: adam, adamw, sgd")
  if cfg.grad_clip:
    tx = optax.chain(optax.clip_by_global_norm(cfg.grad_clip), tx)
  return tx
