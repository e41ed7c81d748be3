"""Model registry: `get_model(name, **kwargs)` builds any model of the project by name."""

from collections.abc import Callable

from flax import nnx

from bugnist_jax.models.cnn3d import BugCNN3D
from bugnist_jax.models.staged import StagedModel

MODELS: dict[str, Callable[..., StagedModel]] = {
  "bugcnn3d": BugCNN3D,
}


def get_model(name: str, *, rngs: nnx.Rngs | None = None, **kwargs) -> StagedModel:
  """Builds the model registered as `name`; kwargs go to its constructor."""
  if name not in MODELS:
    raise ValueError(f"unknown model {name!r}; valid models: {', '.join(sorted(MODELS))}")
  return MODELS[name](rngs=rngs or nnx.Rngs(0), **kwargs)


__all__ = ["MODELS", "BugCNN3D", "StagedModel", "get_model"]
