"""Model registry: `get_model(name, **kwargs)` builds any model of the project by name."""

from collections.abc import Callable

from flax import nnx

from bugnist_jax.models.cnn2d import CaltechCNN
from bugnist_jax.models.cnn3d import BugCNN3D
from bugnist_jax.models.staged import StagedModel
from bugnist_jax.models.vgg import VGG19

MODELS: dict[str, Callable[..., StagedModel]] = {
  "bugcnn3d": BugCNN3D,
  "cnn2d": CaltechCNN,  # the Caltech-101 study's architectures 1, 2, 3 (model.arch)
  "vgg19": VGG19,  # torchvision layout; model.batch_norm=True is vgg19_bn
}


def get_model(name: str, *, rngs: nnx.Rngs | None = None, **kwargs) -> StagedModel:
  """Builds the model registered as `name`; kwargs go to its constructor."""
  if name not in MODELS:
    raise ValueError(f"unknown model {name!r}; valid models: {', '.join(sorted(MODELS))}")
  return MODELS[name](rngs=rngs or nnx.Rngs(0), **kwargs)


__all__ = ["MODELS", "BugCNN3D", "CaltechCNN", "StagedModel", "VGG19", "get_model"]
