"""A learned saliency branch on any registered backbone (seed 001's two-branch network).

`add_saliency_branch(model, ...)` gives a built `StagedModel` one more *branch* (see
`contract`): a small decoder named `'saliency'` that reads one or more named trunk stages and
returns a map logit `[B, *input_shape, 1]` at the input resolution. The trunk is unchanged, so
`model(x)` is still the logits, `split_at` still means the classifier's trunk and head, and
parameter paths of the trunk are those of the plain model (weights move between the two).

Decoders (`decoder=`):
- `'unet'`: U-Net-like top-down path with skips: each source is projected to `width`
  channels (1x1 conv), the coarser path is upsampled (linear) to its size and added, and a
  3x3 conv + ReLU smooths the sum; by default the sources are the last located stage at each
  resolution down to the CAM layer.
- `'attention'`: an attention-branch head (Fukui et al. 2019) on one stage (default the CAM
  layer): 1x1 conv, ReLU, 3x3 conv, ReLU, 1x1 conv to one channel.
Both end in a 1x1 conv to one channel, then linear upsampling to the input size.
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from bugnist_jax.models.contract import SPATIAL, Stage
from bugnist_jax.models.layers import Conv
from bugnist_jax.models.staged import StagedModel

BRANCH = "saliency"  # the branch's name: outputs[BRANCH] is the map logit [B, *S, 1]
DECODERS = ("unet", "attention")


def resize_to(x: jax.Array, spatial: Sequence[int]) -> jax.Array:
  """Linear resize of [B, *S, C] to [B, *spatial, C] (identity when the sizes agree)."""
  if tuple(x.shape[1:-1]) == tuple(spatial):
    return x
  return jax.image.resize(x, (x.shape[0], *spatial, x.shape[-1]), "linear")


class SaliencyDecoder(Stage):
  """The saliency branch: feature maps of its sources (trunk order, fine to coarse) ->
  map logit [B, *out_shape, 1]. `mode` 'unet' fuses every source top-down; 'attention' reads
  one source (see the module docstring)."""

  kind = SPATIAL

  def __init__(
    self,
    in_channels: Sequence[int],
    out_shape: Sequence[int],
    *,
    mode: str = "unet",
    width: int = 8,
    conv_impl: str = "auto",
    dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    if mode not in DECODERS:
      raise ValueError(f"decoder: unknown {mode!r}; valid: {', '.join(DECODERS)}")
    if mode == "attention" and len(in_channels) != 1:
      raise ValueError(f"sources: the attention decoder reads one stage, got {len(in_channels)}")
    ndim = len(out_shape)
    self.mode, self.out_shape = mode, tuple(int(s) for s in out_shape)
    conv = dict(ndim=ndim, conv_impl=conv_impl, dtype=dtype, rngs=rngs)
    self.lateral = nnx.List([Conv(c, width, 1, **conv) for c in in_channels])
    self.smooth = nnx.List([Conv(width, width, 3, **conv) for _ in in_channels])
    self.head = Conv(width, 1, 1, **conv)

  def __call__(self, *features: jax.Array) -> jax.Array:
    y = None
    for f, lateral, smooth in reversed(list(zip(features, self.lateral, self.smooth, strict=True))):
      z = lateral(f)
      z = z if y is None else z + resize_to(y, z.shape[1:-1])
      y = nnx.relu(smooth(nnx.relu(z)))
    # The 1x1 head commutes with linear upsampling: run it at the coarse size, on one channel.
    return resize_to(self.head(y), self.out_shape).astype(jnp.float32)

  def rf_ops(self, ndim: int) -> None:
    return None  # a branch: receptive fields are declared for the trunk only


def default_sources(
  model: StagedModel, decoder: str, shapes: dict[str, tuple[int, ...]] | None = None
) -> tuple[str, ...]:
  """The stages a decoder reads by default: 'attention' the CAM layer; 'unet' the last located
  stage at each resolution, from the finest down to the CAM layer. `shapes`: the trunk's
  output shapes, if the caller has them (`_stage_shapes`)."""
  cam = model.cam_layer()
  if decoder == "attention":
    return (cam,)
  shapes = shapes or _stage_shapes(model)
  located = model.located_layers()
  chosen = []
  for name in located[: located.index(cam) + 1]:
    if chosen and shapes[chosen[-1]][1:-1] == shapes[name][1:-1]:
      chosen[-1] = name  # same resolution: keep the later (deeper) stage
    else:
      chosen.append(name)
  return tuple(chosen)


def _stage_shapes(model: StagedModel) -> dict[str, tuple[int, ...]]:
  x = jax.ShapeDtypeStruct((1, *model.input_shape, model.in_channels), jnp.float32)
  _, outputs = nnx.eval_shape(lambda m, v: m.forward(v, branches=False), model, x)
  return {name: tuple(a.shape) for name, a in outputs.items()}


def add_saliency_branch(
  model: StagedModel,
  *,
  decoder: str = "unet",
  sources: Sequence[str] = (),
  width: int = 8,
  conv_impl: str = "auto",
  dtype=jnp.float32,
  rngs: nnx.Rngs,
) -> StagedModel:
  """`model` with a saliency branch `BRANCH` (a `SaliencyDecoder` reading `sources`, default
  `default_sources`); returns the same object. ValueError naming `decoder` / `sources` /
  `width` for bad values."""
  if decoder not in DECODERS:
    raise ValueError(f"decoder: unknown {decoder!r}; valid: {', '.join(DECODERS)}")
  if int(width) < 1:
    raise ValueError(f"width: {width}, expected at least 1")
  if BRANCH in model.branches:
    raise ValueError(f"{type(model).__name__} already has a branch named {BRANCH!r}")
  shapes = _stage_shapes(model)
  sources = tuple(sources) or default_sources(model, decoder, shapes)
  spatial = model.spatial_layers()
  bad = [s for s in sources if s not in spatial]
  if bad:
    raise ValueError(
      f"sources: {bad[0]!r} is not a spatial trunk stage; valid: {', '.join(spatial)}"
    )
  order = list(model.layer_names)
  sources = tuple(sorted(sources, key=order.index))  # fine to coarse, as the decoder expects
  model.saliency = SaliencyDecoder(
    [shapes[s][-1] for s in sources],
    model.input_shape,
    mode=decoder,
    width=int(width),
    conv_impl=conv_impl,
    dtype=dtype,
    rngs=rngs,
  )
  model.branches = {**model.branches, BRANCH: sources}
  return model


def has_saliency_branch(model: StagedModel) -> bool:
  """Whether `model` publishes a learned map (`outputs[BRANCH]`)."""
  return BRANCH in getattr(model, "branches", {})


def saliency_map(outputs: dict[str, jax.Array]) -> jax.Array:
  """The learned map in [0, 1], [B, *spatial], from a forward pass's outputs."""
  return jax.nn.sigmoid(outputs[BRANCH][..., 0])
