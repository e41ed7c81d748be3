"""optax optimizer and learning-rate schedule from config.train."""

import jax
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
  freeze = tuple(cfg.get("freeze", ()) or ())
  if freeze:
    tx = optax.multi_transform({"train": tx, "frozen": optax.set_to_zero()}, _freeze_labels(freeze))
  return tx


def _freeze_labels(prefixes: tuple[str, ...]):
  """Labels params 'frozen' whose stage (first path key, e.g. 'conv1_1') starts with a prefix.

  A function of the params tree, so the optimizer is built without the model: nnx.Optimizer
  passes the model's nnx.Param state, whose first path key is the stage name.
  """

  def stage(path) -> str:
    first = path[0]
    return str(getattr(first, "key", getattr(first, "name", first)))

  def labels(params):
    return jax.tree_util.tree_map_with_path(
      lambda path, _: "frozen" if stage(path).startswith(prefixes) else "train", params
    )

  return labels
