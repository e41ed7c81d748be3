"""Receptive fields of a staged model's neurons by receptive-field arithmetic.

Each spatial stage is a chain of sliding-window ops (kernel k, stride s, 'SAME'/'VALID'
padding with p pixels before). Along one axis, with the input's field jump j, size r and start
offset a (all 1, 1, 0 for the input itself), an op gives

    j' = j * s,   r' = r + (k - 1) * j,   a' = a - p * j,

and output index i of the stage sees input pixels [a + i * j, a + i * j + r) (clipped to the
input: padding has no pixels). Stage geometry comes from the stage module: `rf_ops(ndim)` if it
has one (cnn2d.MaxPool, vgg.VGGConv, vgg.Pool2), else a `layers.ConvBlock` (conv, then its
optional non-overlapping pool). Dense stages (and anything after them) see the whole input.
"""

import dataclasses
from collections.abc import Sequence

from jax import lax

from bugnist_jax.models.layers import ConvBlock
from bugnist_jax.models.staged import StagedModel

Op = tuple[tuple[int, ...], tuple[int, ...], str]  # (kernel, strides, padding) per axis


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


def _tuple(v, ndim: int) -> tuple[int, ...]:
  return tuple(int(x) for x in v) if isinstance(v, Sequence) else (int(v),) * ndim


def stage_ops(module, ndim: int) -> list[Op] | None:
  """The sliding-window ops of one stage, or None for a non-spatial (dense) stage."""
  if hasattr(module, "rf_ops"):
    return module.rf_ops(ndim)
  if isinstance(module, ConvBlock):
    conv = module.conv
    ops = [(_tuple(conv.kernel_size, ndim), _tuple(conv.strides or 1, ndim), conv.padding)]
    if module.pool:
      ops.append(((module.pool,) * ndim, (module.pool,) * ndim, "VALID"))
    return ops
  return None


def receptive_fields(model: StagedModel, input_shape: Sequence[int]) -> dict[str, Field]:
  """Field of every spatial stage of `model` for inputs of spatial shape `input_shape`.

  Stops at the first stage without geometry (dense layers, adaptive pools): those and all later
  stages see the whole input.
  """
  ndim = len(input_shape)
  size, jump, rf, start = list(input_shape), [1] * ndim, [1] * ndim, [0] * ndim
  fields = {}
  for name in model.layer_names:
    ops = stage_ops(getattr(model, name), ndim)
    if ops is None:
      break
    for kernel, strides, padding in ops:
      pads = (lax.padtype_to_pads(tuple(size), kernel, strides, padding)
              if isinstance(padding, str) else [tuple(p) for p in padding])  # fmt: skip
      for ax in range(ndim):
        lo, hi = pads[ax]
        start[ax] -= lo * jump[ax]
        rf[ax] += (kernel[ax] - 1) * jump[ax]
        jump[ax] *= strides[ax]
        size[ax] = (size[ax] + lo + hi - kernel[ax]) // strides[ax] + 1
    fields[name] = Field(tuple(jump), tuple(rf), tuple(start), tuple(size))
  return fields
