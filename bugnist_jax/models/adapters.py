"""The one place a staged NNX model becomes the pure functions `bugnist_jax.saliency` takes.

The functions close over an eval view's state (dropout off, batch-norm running averages), so
explaining a model never mutates it, and each sample's map depends on that sample alone.
`Bound.from_state` builds them from a split state instead, so a jitted function can take the
parameters as an argument (the sanity study's layer randomisation does).
"""

import dataclasses
from collections.abc import Callable

import jax
from flax import nnx

from bugnist_jax.models.staged import StagedModel

Fn = Callable[[jax.Array], jax.Array]


def eval_view(model: StagedModel) -> StagedModel:
  """The model in inference mode (no dropout, batch-norm running averages), sharing its
  parameters. Every consumer that is not training uses this view."""
  return nnx.view(model, deterministic=True, use_running_average=True, raise_if_not_found=False)


def stage_fn(model: StagedModel, start: str | None = None, stop: str | None = None) -> Fn:
  """Pure eval-mode f(x) = output of trunk stage `stop` (None: the logits) computed from the
  output of `start` (None: the model input)."""
  if start is not None:
    model.index(start)  # ValueError listing the valid layers
  if stop is not None:
    model.index(stop)
  graphdef, state = nnx.split(eval_view(model))
  return lambda x: nnx.merge(graphdef, state).forward(x, start=start, stop=stop, branches=False)[0]


@dataclasses.dataclass(frozen=True)
class Bound:
  """A model as functions: `f(x) -> logits`, `features(x) -> A` at `layer`, `head(A) ->
  logits`, and `forward(x) -> (logits, outputs by name)` with the branches."""

  f: Fn
  features: Fn
  head: Fn
  forward: Callable[[jax.Array], tuple[jax.Array, dict[str, jax.Array]]]
  layer: str

  @classmethod
  def from_model(cls, model: StagedModel, layer: str | None = None) -> "Bound":
    """Binds an eval view of `model`; `layer` defaults to `model.cam_layer()`."""
    graphdef, state = nnx.split(eval_view(model))
    return cls.from_state(graphdef, state, layer=layer or model.cam_layer())

  @classmethod
  def from_state(cls, graphdef: nnx.GraphDef, *state, layer: str) -> "Bound":
    """Binds `nnx.merge(graphdef, *state)`: the state may be traced (a jit argument)."""
    model = nnx.merge(graphdef, *state)
    model.index(layer)
    run = lambda x, start=None, stop=None: nnx.merge(graphdef, *state).forward(
      x, start=start, stop=stop, branches=False
    )[0]
    return cls(
      f=run,
      features=lambda x: run(x, stop=layer),
      head=lambda a: run(a, start=layer),
      forward=lambda x: nnx.merge(graphdef, *state).forward(x),
      layer=layer,
    )


def as_function(model: StagedModel) -> Fn:
  """f(x [B, *spatial, C]) -> logits [B, K], in eval mode."""
  return stage_fn(model)


def split_at(model: StagedModel, layer: str) -> tuple[Fn, Fn]:
  """(features, head) with features(x) = output of `layer`, head(a) = logits from it."""
  return stage_fn(model, None, layer), stage_fn(model, layer, None)
