"""A model made of named stages, so every intermediate can be read and the model split at one."""

from collections.abc import Sequence

import jax
from flax import nnx


class StagedModel(nnx.Module):
  """Base class: subclasses set `layer_names` and one attribute (a callable module) per name.

  Naming the stages gives feature maps (`forward(...)[1]`), a split for Grad-CAM
  (`adapters.split_at`) and layer-by-layer randomisation, all without hooks.
  """

  layer_names: Sequence[str] = ()

  def _index(self, name: str | None, default: int) -> int:
    if name is None:
      return default
    if name not in self.layer_names:
      raise ValueError(f"unknown layer {name!r}; valid layers: {', '.join(self.layer_names)}")
    return list(self.layer_names).index(name)

  def forward(
    self, x: jax.Array, start: str | None = None, stop: str | None = None
  ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Runs the stages after `start` up to and including `stop`.

    Args:
      x: the model input, or the output of stage `start` when `start` is given.
      start: name of the stage whose output `x` is; None means `x` is the model input.
      stop: last stage to run; None means run to the logits.

    Returns:
      The last stage's output and a dict of every computed stage output by name.
    """
    first = self._index(start, -1) + 1
    last = self._index(stop, len(self.layer_names) - 1)
    outputs = {}
    for name in self.layer_names[first : last + 1]:
      x = outputs[name] = getattr(self, name)(x)
    return x, outputs

  def __call__(self, x: jax.Array) -> jax.Array:
    """Logits [B, num_classes] for input x [B, *spatial, C]."""
    return self.forward(x)[0]
