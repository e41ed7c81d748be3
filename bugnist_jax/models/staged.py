"""StagedModel: a model made of named stages (see `contract` for what each one declares).

Naming the stages gives feature maps (`forward(...)[1]`), a split for CAMs
(`adapters.split_at`), receptive fields and layer-by-layer randomisation, all without hooks.
"""

from collections.abc import Mapping, Sequence

import jax
from flax import nnx

from bugnist_jax.models.contract import INPUT, SPATIAL, Stage, stage_of


class StagedModel(nnx.Module):
  """Base class: subclasses set `layer_names` (the trunk), one `Stage` attribute per name,
  `input_shape` and `in_channels`, and optionally `branches` (see `models.contract`)."""

  layer_names: Sequence[str] = ()
  branches: Mapping[str, tuple[str, ...]] = {}

  def index(self, name: str) -> int:
    """Position of trunk stage `name` in `layer_names`; ValueError listing them otherwise."""
    if name not in self.layer_names:
      raise ValueError(f"unknown layer {name!r}; valid layers: {', '.join(self.layer_names)}")
    return list(self.layer_names).index(name)

  def stage(self, name: str) -> Stage:
    """The stage module `name` (trunk or branch)."""
    return stage_of(self, name)

  def spatial_layers(self) -> list[str]:
    """Trunk stages with spatial output (feature maps), in order."""
    return [n for n in self.layer_names if self.stage(n).kind == SPATIAL]

  def located_layers(self) -> list[str]:
    """Spatial trunk stages whose neurons have a known receptive field: those before the first
    stage that is flat or declares no geometry (an adaptive pool)."""
    located = []
    for name in self.layer_names:
      stage = self.stage(name)
      if stage.kind != SPATIAL or stage.rf_ops(len(self.input_shape)) is None:
        break
      located.append(name)
    return located

  def cam_layer(self, min_size: int = 3) -> str:
    """The default layer for CAM methods, used by every command: the last located spatial trunk
    stage (`located_layers`) with at least `min_size` positions along every axis at
    `input_shape` (a coarser map cannot localise anything), else the first one."""
    spatial = self.located_layers()
    if not spatial:
      raise ValueError(f"{type(self).__name__} has no spatial stage for a CAM")
    x = jax.ShapeDtypeStruct((1, *self.input_shape, self.in_channels), jax.numpy.float32)
    _, outputs = nnx.eval_shape(lambda m, v: m.forward(v, branches=False), self, x)
    fine = [n for n in spatial if min(outputs[n].shape[1:-1]) >= min_size]
    return fine[-1] if fine else spatial[0]

  def forward(
    self,
    x: jax.Array,
    start: str | None = None,
    stop: str | None = None,
    *,
    branches: bool = True,
  ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Runs the trunk stages after `start` up to and including `stop`, then the branches.

    Args:
      x: the model input [B, *spatial, C], or the output of stage `start` when it is given.
      start: name of the trunk stage whose output `x` is; None means `x` is the model input.
      stop: last trunk stage to run; None means run to the logits.
      branches: also run every branch whose sources were computed in this call.

    Returns:
      The last trunk stage's output and a dict of every computed output by name.
    """
    first = -1 if start is None else self.index(start)
    last = len(self.layer_names) - 1 if stop is None else self.index(stop)
    outputs = {INPUT: x} if start is None else {}
    y = x
    for name in self.layer_names[first + 1 : last + 1]:
      y = outputs[name] = getattr(self, name)(y)
    if branches:
      for name, sources in self.branches.items():
        if all(s in outputs for s in sources):
          outputs[name] = getattr(self, name)(*(outputs[s] for s in sources))
    outputs.pop(INPUT, None)
    return y, outputs

  def __call__(self, x: jax.Array) -> jax.Array:
    """Logits [B, num_classes] for input x [B, *spatial, C] (branches are not run)."""
    return self.forward(x, branches=False)[0]
