"""Every stage's output for one input as the viewer shows it, from the model contract alone.

`Panels(model)` reads the model's stages (`layer_names`, `branches` and their sources, each
stage's `kind`, `check_model`'s shapes, `inspection.receptive_fields`) and compiles one function
per stage (`compile.jit`, once, reused for every input): the stage itself, then its summary on
the device: int8 codes of its output with one scale per layer (max |value| over all channels
and positions, so 0 stays 0, black on the blue/black/red map), its range and a 16-bin
histogram. Trunk stages run in order, each on the previous output, and branches on their
sources' outputs, as `StagedModel.forward` does; only the int8 codes leave the device.
"""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from bugnist_jax import compile
from bugnist_jax.inspection import receptive_fields
from bugnist_jax.models.contract import INPUT, SPATIAL, check_model
from bugnist_jax.models.staged import StagedModel
from bugnist_jax.viewer import blob

BINS = 16  # DeepVisionVR's histograms have 16 bins


@dataclasses.dataclass(frozen=True)
class StageInfo:
  """One node of the viewer's graph: the model input, a trunk stage or a branch."""

  name: str
  kind: str  # 'spatial' [*S, C] or 'flat' [F]
  shape: tuple[int, ...]  # output shape without the batch axis
  role: str  # 'input', 'trunk' or 'branch'
  sources: tuple[str, ...]  # the stages it reads
  rf: dict[str, list[int]] | None  # receptive field: size and jump per axis; None: whole input
  params: int  # parameter count

  def describe(self) -> dict[str, Any]:
    return dataclasses.asdict(self) | {"shape": list(self.shape), "sources": list(self.sources)}


def _summary(y: jax.Array) -> dict[str, jax.Array]:
  """Device-side summary of one stage output y [1, *S, C] or [1, F]: int8 codes channel-first
  ([C, *S] or [F]), the scale, min, max and histogram counts over [min, max]."""
  v = y[0].astype(jnp.float32)
  peak = jnp.max(jnp.abs(v))
  scale = jnp.where(jnp.isfinite(peak) & (peak > 0), peak, 1.0)
  codes = jnp.round(v * (127.0 / scale)).astype(jnp.int8)
  if v.ndim > 1:
    codes = jnp.moveaxis(codes, -1, 0)
  lo, hi = jnp.min(v), jnp.max(v)
  width = jnp.where(hi > lo, hi - lo, 1e-6)
  bins = jnp.clip(jnp.floor((v - lo) / width * BINS), 0, BINS - 1).astype(jnp.int32)
  counts = jnp.bincount(bins.reshape(-1), length=BINS).astype(jnp.int32)
  return {"codes": codes, "scale": scale, "min": lo, "max": hi, "counts": counts}


def weight_histograms(module: nnx.Module) -> tuple[int, dict[str, np.ndarray] | None]:
  """(parameter count, histogram of its weights) of a stage: the kernels (`*.kernel`) if it
  has any, else all its parameters; None for a stage without parameters (a pool)."""
  flat = [(path, np.asarray(v[...])) for path, v in nnx.to_flat_state(nnx.state(module, nnx.Param))]
  count = sum(int(a.size) for _, a in flat)
  kernels = [a for path, a in flat if path and path[-1] == "kernel"] or [a for _, a in flat]
  if not kernels:
    return count, None
  return count, blob.histogram(np.concatenate([k.reshape(-1) for k in kernels]), BINS)


class Panels:
  """Compiled per-stage summaries of a staged model (an eval view: `runs.Run.model`)."""

  def __init__(self, model: StagedModel):
    self.model = model
    shapes = check_model(model, batch=1)
    input_shape = (*map(int, model.input_shape), int(model.in_channels))
    fields = receptive_fields(model, model.input_shape)
    one = {"size": [1] * len(model.input_shape), "jump": [1] * len(model.input_shape)}
    self.stages = [StageInfo(INPUT, SPATIAL, input_shape, "input", (), one, 0)]
    self.weights: dict[str, dict[str, np.ndarray]] = {}
    previous = INPUT
    for name, (kind, shape) in shapes.items():
      trunk = name in model.layer_names
      sources = (previous,) if trunk else tuple(model.branches[name])
      count, hist = weight_histograms(model.stage(name))
      if hist is not None:
        self.weights[name] = hist
      role = "trunk" if trunk else "branch"
      field = fields.get(name)
      rf = None if field is None else {"size": list(field.size), "jump": list(field.jump)}
      self.stages.append(StageInfo(name, kind, tuple(shape[1:]), role, sources, rf, count))
      previous = name if trunk else previous
    self.by_name = {s.name: s for s in self.stages}
    self._steps = {s.name: self._compile(s.name) for s in self.stages[1:]}
    self._input_summary = compile.jit(_summary)

  def _compile(self, name: str):
    graphdef, state = nnx.split(self.model.stage(name))

    def step(state, *inputs):
      y = nnx.merge(graphdef, state)(*inputs)
      return y, _summary(y)

    jitted = compile.jit(step)
    return lambda *inputs: jitted(state, *inputs)

  def summaries(self, x: jax.Array) -> tuple[dict[str, jax.Array], dict[str, dict]]:
    """(outputs, summaries) by stage name for a normalised input x [1, *S, C], on the host
    (summaries) and on the device (outputs, for the TIFF export)."""
    outputs, summaries = {INPUT: jnp.asarray(x)}, {INPUT: self._input_summary(x)}
    for stage in self.stages[1:]:
      outputs[stage.name], summaries[stage.name] = self._steps[stage.name](
        *(outputs[s] for s in stage.sources)
      )
    return outputs, jax.device_get(summaries)

  def blobs(self, x: jax.Array) -> dict[str, bytes]:
    """{stage: blob} for input x [1, *S, C]: meta (stage, kind, shape, scale, min, max) and
    arrays `panels` (int8 [C, *S] or [F]), `hist_counts` int32 [16], `hist_edges` float32 [17]."""
    _, summaries = self.summaries(x)
    return {name: self.encode(name, s) for name, s in summaries.items()}

  def encode(self, name: str, s: dict) -> bytes:
    """The blob of stage `name` from its host-side summary."""
    stage = self.by_name[name]
    lo, hi = float(s["min"]), float(s["max"])
    meta = {
      "stage": name,
      "kind": stage.kind,
      "shape": list(stage.shape),
      "scale": float(s["scale"]),
      "min": lo,
      "max": hi,
    }
    edges = np.linspace(lo, hi if hi > lo else lo + 1e-6, BINS + 1, dtype=np.float32)
    arrays = {"panels": s["codes"], "hist_counts": s["counts"], "hist_edges": edges}
    return blob.encode(meta, arrays)

  def describe(self) -> list[dict[str, Any]]:
    """The graph as JSON-able dicts, input first, then the trunk, then the branches."""
    return [s.describe() for s in self.stages]
