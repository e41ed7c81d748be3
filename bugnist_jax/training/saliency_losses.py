"""Losses of the learned saliency branch (`models.saliency_branch`): config.train.saliency_losses.

Each term is fn(model, inputs [B, *S, C], batch, outputs, cfg) -> scalar, where
`outputs['saliency']` is the branch's map logit [B, *S, 1] of this step's forward pass:
- `mask`: per item, the mean binary cross-entropy of the map against `object_mask` plus the
  soft Dice loss (1 - Dice); BCE keeps the background low, Dice keeps a small object from
  being drowned by it.
- `box`: the box (`object_box` (lo..., hi...), or the bounding box of `object_mask` where a
  source has masks only) as a target mask (`box_target`), BCE weighted by where the box is
  sure: see `box_to_mask`.
- `gain`: GAIN's attention mining (Li et al. 2018): the input with the predicted map masked
  out, x* = x - T(A) x with T(A) = sigmoid(omega (A - sigma)), should no longer score its class;
  the term is the mean softmax probability of the true class on x* plus `GAIN_AREA` times the
  mean map (without it, a learned map can cover everything and trivially win).

The supervised terms (`mask`, `box`) are masked per item by `batch['annotated']` [B] (1: the
item has an annotation), so annotated and unannotated items mix in one batch; a batch with no
annotated item contributes 0. `gain` needs no annotation and counts every item.
"""

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import optax

from bugnist_jax.errors import UserError
from bugnist_jax.models.adapters import eval_view
from bugnist_jax.models.saliency_branch import BRANCH

GAIN_SIGMA, GAIN_OMEGA = 0.5, 10.0  # GAIN's soft threshold (paper values)
GAIN_AREA = 0.1  # weight of the mean map in the attention-mining term
BOX_CORE = 0.5  # 'filled' boxes: the central fraction of each side that is surely object
BOX_TARGETS = ("filled", "gaussian")


def _per_item_mean(x: jax.Array) -> jax.Array:
  return jnp.mean(x, axis=tuple(range(1, x.ndim)))


def masked_mean(per_item: jax.Array, annotated: jax.Array) -> jax.Array:
  """Mean of `per_item` [B] over items with `annotated` [B] = 1; 0 if there are none."""
  w = annotated.astype(jnp.float32)
  return jnp.sum(per_item * w) / jnp.maximum(jnp.sum(w), 1.0)


def weighted_bce(logits: jax.Array, target: jax.Array, weight: jax.Array | None = None):
  """Per-item mean binary cross-entropy [B] of logits [B, *S] against target in [0, 1],
  optionally weighted per pixel (weight [B, *S]; mean over the weighted pixels)."""
  bce = optax.sigmoid_binary_cross_entropy(logits, target)
  if weight is None:
    return _per_item_mean(bce)
  axes = tuple(range(1, bce.ndim))
  return jnp.sum(bce * weight, axes) / jnp.maximum(jnp.sum(weight, axes), 1.0)


def dice_loss(prob: jax.Array, target: jax.Array, eps: float = 1.0) -> jax.Array:
  """Per-item soft Dice loss [B]: 1 - (2 |p t| + eps) / (|p| + |t| + eps)."""
  axes = tuple(range(1, prob.ndim))
  inter = jnp.sum(prob * target, axes)
  return 1.0 - (2 * inter + eps) / (jnp.sum(prob, axes) + jnp.sum(target, axes) + eps)


def box_from_mask(mask: jax.Array) -> jax.Array:
  """Bounding boxes [B, 2 n] (lo..., hi..., hi exclusive) of masks [B, *S] (n axes); an empty
  mask gives an empty box (lo = hi = 0)."""
  lo, hi = [], []
  for axis in range(1, mask.ndim):
    other = tuple(a for a in range(1, mask.ndim) if a != axis)
    present = jnp.any(mask > 0, axis=other)  # [B, S_axis]
    n = present.shape[-1]
    first = jnp.argmax(present, -1)
    last = n - jnp.argmax(present[:, ::-1], -1)
    anything = jnp.any(present, -1)
    lo.append(jnp.where(anything, first, 0))
    hi.append(jnp.where(anything, last, 0))
  return jnp.stack(lo + hi, -1).astype(jnp.int32)


def box_to_mask(
  box: jax.Array, shape: Sequence[int], kind: str = "filled"
) -> tuple[jax.Array, jax.Array]:
  """(target, weight), each [B, *shape], of boxes [B, 2 n] (lo..., hi..., hi exclusive).

  'filled': target 1 in the box's core (the central `BOX_CORE` of each side) and 0 outside
  the box, weight 0 on the band between (the box's corners and edges are often background:
  there the box does not say). 'gaussian': target exp(-d^2 / 2) inside the box, d the distance
  from the centre in units of a quarter of the side, 0 outside; weight 1 everywhere.
  """
  if kind not in BOX_TARGETS:
    raise ValueError(f"box_target: unknown {kind!r}; valid: {', '.join(BOX_TARGETS)}")
  n = len(shape)
  box = box.astype(jnp.float32)
  inside = core = jnp.ones((box.shape[0], *shape), bool)
  sq = jnp.zeros((box.shape[0], *shape), jnp.float32)
  for axis, size in enumerate(shape):
    c = jnp.arange(size, dtype=jnp.float32) + 0.5  # pixel centres
    view = (1,) * axis + (size,) + (1,) * (n - axis - 1)
    c = c.reshape(1, *view)
    lo = box[:, axis].reshape(-1, *(1,) * n)
    hi = box[:, n + axis].reshape(-1, *(1,) * n)
    mid, half = (lo + hi) / 2, jnp.maximum((hi - lo) / 2, 0.5)
    inside = inside & (c >= lo) & (c < hi)
    core = core & (jnp.abs(c - mid) <= BOX_CORE * half)
    sq = sq + ((c - mid) / (half / 2)) ** 2
  if kind == "gaussian":
    target = jnp.where(inside, jnp.exp(-sq / 2), 0.0)
    return target, jnp.ones_like(target)
  target = (inside & core).astype(jnp.float32)
  weight = jnp.where(inside & ~core, 0.0, 1.0)
  return target, weight


def _logit_map(outputs: dict) -> jax.Array:
  if BRANCH not in outputs:
    raise UserError(
      "config.train.saliency_losses: the model has no saliency branch; set "
      "config.saliency_branch.decoder ('unet' or 'attention')"
    )
  return outputs[BRANCH][..., 0]


def _annotated(batch: dict, key: str) -> jax.Array:
  """`batch['annotated']` [B] where the data says; else every item that carries `key`."""
  if "annotated" in batch:
    return batch["annotated"]
  return jnp.ones(batch[key].shape[:1], jnp.float32)


def _need(batch: dict, keys: Sequence[str], term: str) -> str:
  for key in keys:
    if key in batch:
      return key
  raise UserError(
    f"config.train.saliency_losses={term} needs {' or '.join(keys)} in the records: use a "
    "synthetic source, set config.data.mask_from_threshold=True, or give annotations "
    "(config.data.annotations)"
  )


def mask_loss(model, inputs, batch, outputs, cfg) -> jax.Array:
  """BCE + Dice of the map against `object_mask` [B, *S], over annotated items."""
  del model, inputs, cfg
  logits = _logit_map(outputs)
  key = _need(batch, ("object_mask",), "mask")
  target = batch[key].astype(jnp.float32)
  per_item = weighted_bce(logits, target) + dice_loss(jax.nn.sigmoid(logits), target)
  return masked_mean(per_item, _annotated(batch, key))


def box_loss(model, inputs, batch, outputs, cfg) -> jax.Array:
  """Weighted BCE of the map against the box target (`box_to_mask`), over annotated items."""
  del model, inputs
  logits = _logit_map(outputs)
  key = _need(batch, ("object_box", "object_mask"), "box")
  box = batch["object_box"] if key == "object_box" else box_from_mask(batch["object_mask"])
  target, weight = box_to_mask(box, logits.shape[1:], cfg.get("box_target", "filled"))
  return masked_mean(weighted_bce(logits, target, weight), _annotated(batch, key))


def gain_loss(model, inputs, batch, outputs, cfg) -> jax.Array:
  """GAIN attention mining: mean true-class probability on x - T(A) x, plus the map's area.

  Runs the classifier once more, in inference mode (as `losses.right_for_the_right_reasons`
  takes its gradient), on the masked inputs; the gradient reaches the branch through T(A).
  """
  del cfg
  prob = jax.nn.sigmoid(_logit_map(outputs))
  soft = jax.nn.sigmoid(GAIN_OMEGA * (prob - GAIN_SIGMA))[..., None].astype(inputs.dtype)
  masked = inputs - soft * inputs
  p = jax.nn.softmax(eval_view(model)(masked))
  p_true = jnp.take_along_axis(p, batch["label"][:, None].astype(jnp.int32), -1)[:, 0]
  return jnp.mean(p_true) + GAIN_AREA * jnp.mean(prob)


SALIENCY_LOSSES: dict[str, Callable] = {"mask": mask_loss, "box": box_loss, "gain": gain_loss}


def get_saliency_loss(cfg) -> Callable | None:
  """fn(model, inputs, batch, outputs) -> {term: weighted value} of `cfg.saliency_losses`
  (config.train), or None when there are none; UserError naming the bad field."""
  names = tuple(cfg.get("saliency_losses", ()) or ())
  if not names:
    return None
  unknown = [n for n in names if n not in SALIENCY_LOSSES]
  if unknown:
    raise UserError(
      f"config.train.saliency_losses: unknown {unknown[0]!r}; valid: {', '.join(SALIENCY_LOSSES)}"
    )
  if cfg.get("box_target", "filled") not in BOX_TARGETS:
    raise UserError(
      f"config.train.box_target: unknown {cfg.box_target!r}; valid: {', '.join(BOX_TARGETS)}"
    )
  weights = {n: float(cfg.saliency_weights.get(n, 1.0)) for n in names}

  def terms(model, inputs, batch, outputs) -> dict[str, jax.Array]:
    return {n: weights[n] * SALIENCY_LOSSES[n](model, inputs, batch, outputs, cfg) for n in names}

  return terms
