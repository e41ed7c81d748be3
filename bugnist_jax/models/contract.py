"""The model contract: what every registered model and each of its stages promises.

A model (`staged.StagedModel`) is a chain of named stages, the *trunk*, from the input to the
logits, plus optional named *branches* that read trunk stages and are not on the chain:

- `model.layer_names`: the trunk stages in order; the last gives logits `[B, num_classes]`.
- `model.branches`: `{branch: (source, ...)}`; a branch is called with the outputs of its
  sources (trunk stage names, or `'input'` for the model input) and its output is published
  under its own name. `split_at(model, layer)` and `forward(x, start, stop)` follow the trunk.
- `model.input_shape` (spatial, e.g. `(D, H, W)`) and `model.in_channels`: the input
  `[B, *input_shape, in_channels]` it was built for.

Every stage (trunk or branch) is a `Stage`, an `nnx.Module` that declares:

- `kind`: `'spatial'` (its output is `[B, *spatial', C']`, a feature map) or `'flat'`
  (`[B, F]`, a vector, e.g. a dense layer or the logits);
- `rf_ops(ndim)`, for spatial stages: the sliding-window ops `(kernel, strides, padding)` of
  its longest path from its input to its output (a residual block: the main path; a dense
  block: every layer's 3x3 in a row), from which `inspection.receptive_fields` computes each
  neuron's field; `None` where the geometry depends on the input size (an adaptive pool), so
  later stages count as seeing the whole input. Padding is `'SAME'`, `'VALID'` or one
  `(lo, hi)` pair per axis.

A stage may also define `filters()`, `{name: kernel [*k, Cin, Cout]}`, the filters
`inspection.save_filters` (look_inside) draws as images, each with its sum.

`check_model(model)` checks all of this on abstract shapes and raises `ContractError` naming the
stage that breaks it; the contract test runs it over every entry of `MODELS`.
"""

from collections.abc import Sequence
from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

SPATIAL, FLAT = "spatial", "flat"
KINDS = (SPATIAL, FLAT)
INPUT = "input"  # the source name of the model input, for branches

Padding = str | Sequence[tuple[int, int]]
Op = tuple[tuple[int, ...], tuple[int, ...], Padding]  # (kernel, strides, padding) per axis


class ContractError(ValueError):
  """A model or stage that does not keep the contract; the message names the stage."""


class Stage(nnx.Module):
  """Base class of every stage. Subclasses set `kind` and, if spatial, define `rf_ops`."""

  kind: ClassVar[str] = SPATIAL

  def rf_ops(self, ndim: int) -> list[Op] | None:
    """Sliding-window ops of the stage's longest path; [] for a pointwise stage."""
    raise NotImplementedError(f"{type(self).__name__} declares no rf_ops")

  def filters(self) -> dict[str, jax.Array]:
    """Filters worth showing as images (look_inside): {name: kernel [*k, Cin, Cout]}; a stage
    whose filters are few and small (a front-end's, a first conv's) overrides this."""
    return {}


def window(
  kernel: int | Sequence[int], strides: int | Sequence[int], padding: Padding, ndim: int
) -> Op:
  """One op with ints broadcast to `ndim` axes."""
  per_axis = lambda v: tuple(int(a) for a in v) if isinstance(v, Sequence) else (int(v),) * ndim
  if not isinstance(padding, str):
    padding = tuple((int(lo), int(hi)) for lo, hi in padding)
  return per_axis(kernel), per_axis(strides), padding


def apply_ops(shape: Sequence[int], ops: Sequence[Op]) -> tuple[int, ...]:
  """The spatial output shape of `ops` applied to a spatial input `shape` (floor)."""
  size = list(shape)
  for kernel, strides, padding in ops:
    pads = (
      lax.padtype_to_pads(tuple(size), kernel, strides, padding)
      if isinstance(padding, str)
      else padding
    )
    size = [
      (s + lo + hi - k) // st + 1
      for s, k, st, (lo, hi) in zip(size, kernel, strides, pads, strict=True)
    ]
  return tuple(size)


def stage_of(model, name: str) -> Stage:
  """The stage module `name` of `model`; ContractError if it is missing or not a Stage."""
  module = getattr(model, name, None)
  if module is None:
    raise ContractError(f"stage {name!r}: {type(model).__name__} has no attribute of that name")
  if not isinstance(module, Stage):
    raise ContractError(
      f"stage {name!r} ({type(module).__name__}): not a models.contract.Stage; derive it from "
      "Stage and declare kind ('spatial' or 'flat') and, if spatial, rf_ops(ndim)"
    )
  if module.kind not in KINDS:
    raise ContractError(
      f"stage {name!r} ({type(module).__name__}): kind {module.kind!r}, expected one of {KINDS}"
    )
  return module


def check_model(model, batch: int = 2) -> dict[str, tuple[str, tuple[int, ...]]]:
  """Checks `model` against the contract on abstract shapes (nothing is computed).

  Returns `{stage: (kind, output shape)}` for trunk and branch stages, in forward order.
  Raises ContractError naming the first stage that breaks the contract: a stage that is not
  a `Stage`, a spatial stage whose output is not `[B, *spatial', C]` or whose `rf_ops` give
  another spatial shape than it outputs, a flat stage whose output is not `[B, F]`, a branch
  reading an unknown stage, or logits that are not `[B, K]`.
  """
  names = tuple(model.layer_names)
  if not names:
    raise ContractError(f"{type(model).__name__}: layer_names is empty")
  for attr in ("input_shape", "in_channels"):
    if not hasattr(model, attr):
      raise ContractError(f"{type(model).__name__}: no `{attr}` attribute (set it in __init__)")
  known = {INPUT, *names}
  for branch, sources in model.branches.items():
    stage_of(model, branch)
    bad = [s for s in sources if s not in known]
    if bad:
      raise ContractError(
        f"branch {branch!r}: reads unknown stage {bad[0]!r}; valid: {', '.join(sorted(known))}"
      )
    known.add(branch)
  stages = {name: stage_of(model, name) for name in (*names, *model.branches)}
  spatial = tuple(int(s) for s in model.input_shape)
  x = jax.ShapeDtypeStruct((batch, *spatial, int(model.in_channels)), jnp.float32)
  try:
    _, outputs = nnx.eval_shape(lambda m, v: m.forward(v), model, x)
  except Exception as e:  # name the stage: run them one by one to find it
    raise ContractError(_failing_stage(model, x, e)) from e
  shapes, current = {}, spatial
  for name in (*names, *model.branches):
    stage, shape = stages[name], tuple(outputs[name].shape)
    if stage.kind == SPATIAL:
      if len(shape) != len(spatial) + 2:
        raise ContractError(
          f"stage {name!r} ({type(stage).__name__}): kind 'spatial' but its "
          f"output has shape {shape}, not [B, *spatial, C]"
        )
      if name in names and current is not None:  # receptive-field geometry is trunk only
        ops = stage.rf_ops(len(spatial))
        if ops is None:
          current = None
        else:
          current = apply_ops(current, ops)
          if current != shape[1:-1]:
            raise ContractError(
              f"stage {name!r} ({type(stage).__name__}): rf_ops give spatial shape {current}, "
              f"but the stage outputs {shape[1:-1]}"
            )
    elif len(shape) != 2:
      raise ContractError(
        f"stage {name!r} ({type(stage).__name__}): kind 'flat' but its "
        f"output has shape {shape}, not [B, F]"
      )
    shapes[name] = (stage.kind, shape)
  if stages[names[-1]].kind != FLAT:
    raise ContractError(f"stage {names[-1]!r}: the last trunk stage must give logits [B, K]")
  return shapes


def _failing_stage(model, x, error: Exception) -> str:
  """'stage <name> (<type>): <error>' for the first stage whose call fails on abstract input."""
  y = x
  for name in model.layer_names:
    try:
      y = nnx.eval_shape(lambda m, v, name=name: getattr(m, name)(v), model, y)
    except Exception as e:  # noqa: BLE001 - reported, not handled
      first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
      return f"stage {name!r} ({type(getattr(model, name)).__name__}) fails on {y.shape}: {first}"
  first = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
  return f"{type(model).__name__}: forward fails: {first}"
