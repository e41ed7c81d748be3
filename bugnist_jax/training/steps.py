"""Compiled train and eval steps over a split (graphdef, state) of model and optimizer.

The steps are `compile.jit` functions of `(state, batch)`: NNX's object-graph walk runs at
trace time only, and the state buffers are donated so a step updates them in place. The model
runs once per step (`forward`, branches included); extra losses see its outputs by name.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from bugnist_jax import compile, saliency
from bugnist_jax.data import light
from bugnist_jax.data.transforms import Normalization
from bugnist_jax.models.adapters import as_function, eval_view

# Loss terms beyond cross-entropy (`training.losses.EXTRA_LOSSES`):
# fn(model, inputs [B, *spatial, C] float, batch, outputs {stage: array}) -> scalar.
ExtraLoss = Callable[[nnx.Module, jax.Array, dict, dict], jax.Array]
# Inputs the step trains on instead of the batch's (`training.adversarial.Adversarial`):
# fn(model, inputs, labels [B], normalization, optimizer step) -> inputs [B, *spatial, C].
Perturbation = Callable[[nnx.Module, jax.Array, jax.Array, Normalization, jax.Array], jax.Array]


def cross_entropy(logits: jax.Array, labels: jax.Array, weights: jax.Array | None = None):
  """Mean softmax cross-entropy over the (weighted) batch; logits [B, K], labels [B]."""
  losses = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  if weights is None:
    return losses.mean()
  return jnp.sum(losses * weights) / jnp.maximum(jnp.sum(weights), 1)


def make_train_step(
  graphdef: nnx.GraphDef,
  normalize: Normalization,
  extra_loss: ExtraLoss | None = None,
  extra_weight: float = 0.0,
  adversarial: Perturbation | None = None,
):
  """Returns train_step(state, batch) -> (state, metrics), compiled, donating state.

  `graphdef`/`state` come from `nnx.split((model, optimizer))`. batch: image uint8
  [B, *spatial, C], label int [B] (+ whatever extra_loss reads; `light_mu`/`light_sigma` [B]
  from `data.light.LightJitter`, applied to the inputs). `adversarial` replaces the inputs by
  its own (PGD examples). It also runs inside another jit (the device-resident epoch's scan).
  """

  def train_step(state, batch):
    model, optimizer = nnx.merge(graphdef, state)
    inputs = light.jitter_inputs(normalize(batch["image"]), batch, normalize)
    if adversarial is not None:
      inputs = adversarial(model, inputs, batch["label"], normalize, optimizer.step[...])

    def loss_fn(model):
      # Staged models publish every stage (and branch) output; any other module its logits.
      logits, outputs = model.forward(inputs) if hasattr(model, "forward") else (model(inputs), {})
      ce = cross_entropy(logits, batch["label"])
      total = ce
      extra = jnp.zeros(())
      if extra_loss is not None:
        extra = extra_loss(model, inputs, batch, outputs)
        total = ce + extra_weight * extra
      return total, (logits, ce, extra)

    (loss, (logits, ce, extra)), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
    optimizer.update(model, grads)
    metrics = {
      "loss": loss,
      "cross_entropy": ce,
      "accuracy": jnp.mean(jnp.argmax(logits, -1) == batch["label"]),
      "grad_norm": optax.global_norm(grads),
    }
    if extra_loss is not None:
      metrics["extra_loss"] = extra
    return nnx.state((model, optimizer)), metrics

  return compile.jit(train_step, donate_argnums=0)


def make_eval_step(graphdef: nnx.GraphDef, normalize: Normalization):
  """Returns eval_step(state, batch) -> dict(logits [B, K], loss_sum, correct, count).

  Runs the model in inference mode; padding rows (batch['valid'] False) count for nothing.
  """

  def eval_step(state, batch):
    model = eval_view(nnx.merge(graphdef, state)[0])
    logits = model(normalize(batch["image"]))
    valid = batch["valid"].astype(jnp.float32)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"])
    correct = (jnp.argmax(logits, -1) == batch["label"]).astype(jnp.float32)
    return {
      "logits": logits,
      "loss_sum": jnp.sum(losses * valid),
      "correct": jnp.sum(correct * valid),
      "count": jnp.sum(valid),
    }

  return compile.jit(eval_step)


def make_gradient_step(graphdef: nnx.GraphDef, normalize: Normalization):
  """Returns gradient_step(state, images uint8 [B, *spatial, C], targets int [B]) -> the
  gradient of each target logit w.r.t. the model inputs [B, *spatial, C], in inference mode
  (the saliency figures of each evaluation in TensorBoard)."""

  def gradient_step(state, images, targets):
    f = as_function(nnx.merge(graphdef, state)[0])
    return saliency.vanilla_gradient(f, normalize(images), targets)

  return compile.jit(gradient_step)
