"""Turn a staged NNX model into the pure functions `bugnist_jax.saliency` takes.

The functions close over an eval view's state (dropout off, batch-norm running averages), so
explaining a model never mutates it, and each sample's map depends on that sample alone.
"""

from collections.abc import Callable

import jax
from flax import nnx

from bugnist_jax.models.staged import StagedModel


def eval_view(model: StagedModel) -> StagedModel:
  """The model in inference mode, sharing its parameters."""
  return nnx.view(model, deterministic=True, use_running_average=True, raise_if_not_found=False)


def _pure(model: StagedModel, start: str | None, stop: str | None) -> Callable:
  graphdef, state = nnx.split(eval_view(model))

  def apply(x: jax.Array) -> jax.Array:
    return nnx.merge(graphdef, state).forward(x, start=start, stop=stop)[0]

  return apply


def as_function(model: StagedModel) -> Callable[[jax.Array], jax.Array]:
  """f(x [B, *spatial, C]) -> logits [B, K], in eval mode."""
  return _pure(model, None, None)


def split_at(model: StagedModel, layer: str) -> tuple[Callable, Callable]:
  """(features, head) with features(x) = output of `layer`, head(a) = logits from it."""
  model._index(layer, 0)  # raises a ValueError listing the valid layers
  return _pure(model, None, layer), _pure(model, layer, None)
