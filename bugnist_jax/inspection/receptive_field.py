"""Receptive fields of a staged model's neurons by receptive-field arithmetic.

Each spatial stage declares its sliding-window ops (kernel k, stride s, 'SAME'/'VALID'/explicit
padding with p pixels before; `models.contract`). Along one axis, with the input's field jump
j, size r and start offset a (all 1, 1, 0 for the input itself), an op gives

    j' = j * s,   r' = r + (k - 1) * j,   a' = a - p * j,

and output index i of the stage sees input pixels [a + i * j, a + i * j + r) (clipped to the
input: padding has no pixels). Flat stages, stages whose geometry depends on the input size
(`rf_ops` None) and everything after them see the whole input.
"""

import dataclasses
from collections.abc import Sequence

from jax import lax

from bugnist_jax.models.contract import SPATIAL
from bugnist_jax.models.staged import StagedModel


@dataclasses.dataclass(frozen=True)
class Field:
  """Receptive field of a stage's neurons, per spatial axis; `shape` is the stage's output."""

  jump: tuple[int, ...]
  size: tuple[int, ...]
  start: tuple[int, ...]
  shape: tuple[int, ...]

  def box(self, index: Sequence[int], input_shape: Sequence[int]) -> tuple[slice, ...]:
    """Input slices seen by the neuron at spatial `index`, clipped to `input_shape`."""
    out = []
    for i, j, r, a, n in zip(index, self.jump, self.size, self.start, input_shape, strict=True):
      lo = a + int(i) * j
      out.append(slice(max(lo, 0), min(lo + r, n)))
    return tuple(out)


def receptive_fields(model: StagedModel, input_shape: Sequence[int]) -> dict[str, Field]:
  """Field of every trunk stage with known geometry, for inputs of spatial `input_shape`."""
  ndim = len(input_shape)
  size, jump, rf, start = list(input_shape), [1] * ndim, [1] * ndim, [0] * ndim
  fields = {}
  for name in model.layer_names:
    stage = model.stage(name)
    ops = stage.rf_ops(ndim) if stage.kind == SPATIAL else None
    if ops is None:
      break
    for kernel, strides, padding in ops:
      pads = (
        lax.padtype_to_pads(tuple(size), kernel, strides, padding)
        if isinstance(padding, str)
        else [tuple(p) for p in padding]
      )
      for ax in range(ndim):
        lo, hi = pads[ax]
        start[ax] -= lo * jump[ax]
        rf[ax] += (kernel[ax] - 1) * jump[ax]
        jump[ax] *= strides[ax]
        size[ax] = (size[ax] + lo + hi - kernel[ax]) // strides[ax] + 1
    fields[name] = Field(tuple(jump), tuple(rf), tuple(start), tuple(size))
  return fields
