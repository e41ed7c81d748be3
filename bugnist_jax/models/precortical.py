"""A precortical (retina -> LGN) front-end, composable in front of any registered model, 2D or 3D.

`config.model.frontend = 'precortical'` puts it in front of `config.model.name`'s model
(`models.get_model` calls `compose`); the wrapped model keeps its stage and parameter names,
and the front-end's stages come first in the trunk. Two variants (`frontend_variant`):

- 'learned', the authors' `Deep_RetiNet` (Fioresi and Petkovic 2022): three stages
  `bipolar`, `ganglion`, `lgn`, each a `frontend_kernel`^ndim 'SAME' conv C -> C, dropout
  `frontend_dropout`, tanh. [B, *S, C] -> [B, *S, C]. The authors report centre-surround
  (near zero-sum) filters emerging; look_inside draws them with their sums.
- 'fixed', a parameterised model with nothing to learn: `retina`, ON and OFF centre-surround
  cells, d = G(sigma_c) * x - G(sigma_s) * x per channel (a balanced difference of Gaussians,
  symmetric padding), ON = relu(d), OFF = relu(-d), [B, *S, C] -> [B, *S, 2C]; then `lgn`,
  local contrast gain control (divisive normalisation), y / sqrt(c50^2 + G(sigma_g) *
  mean_c(y^2)). The DoG of a constant is zero, so x -> x + b leaves `retina` (and
  everything after it) unchanged exactly; x -> a x (a > 0) scales the ON/OFF responses by
  a, which the gain control divides out wherever the local contrast is well above c50.
"""

import inspect
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from bugnist_jax.models.contract import INPUT, SPATIAL, Op, Stage, window
from bugnist_jax.models.lenet import TanhConv
from bugnist_jax.models.staged import StagedModel
from bugnist_jax.saliency import gaussian_filter, gaussian_radius

FRONTENDS = ("", "precortical")
VARIANTS = ("learned", "fixed")
# The front-end's config.model fields and defaults; every registered model has them.
FIELDS = {
  "frontend": "",  # '' (none) or 'precortical'
  "frontend_variant": "learned",  # 'learned' (the authors') or 'fixed' (DoG + gain control)
  "frontend_kernel": 7,  # learned: kernel size of each of the three convs
  "frontend_dropout": 0.2,  # learned: dropout after each conv
  "frontend_center_sigma": 1.0,  # fixed: centre Gaussian, pixels / voxels
  "frontend_surround_sigma": 3.0,  # fixed: surround Gaussian
  "frontend_gain_sigma": 3.0,  # fixed: Gaussian pool of the local contrast energy
  "frontend_semisaturation": 0.02,  # fixed: c50 of the gain control, in input units
}


def _spatial_axes(x: jax.Array) -> tuple[int, ...]:
  return tuple(range(1, x.ndim - 1))


class CentreSurround(Stage):
  """ON and OFF centre-surround cells (a balanced DoG per channel): [B, *S, C] -> [B, *S, 2C],
  the C ON maps first. No parameters: the sigmas are fixed."""

  kind = SPATIAL

  def __init__(self, center_sigma: float, surround_sigma: float, ndim: int = 2):
    if not 0 < center_sigma < surround_sigma:
      raise ValueError(
        f"frontend_center_sigma, frontend_surround_sigma: need 0 < centre < surround, got "
        f"{center_sigma}, {surround_sigma}"
      )
    self.center_sigma, self.surround_sigma = float(center_sigma), float(surround_sigma)
    self.ndim = int(ndim)  # the shape of its filters

  def dog(self, x: jax.Array) -> jax.Array:
    """The signed centre-surround response d [B, *S, C] (float32)."""
    axes = _spatial_axes(x)
    return gaussian_filter(x, self.center_sigma, axes) - gaussian_filter(
      x, self.surround_sigma, axes
    )

  def __call__(self, x: jax.Array) -> jax.Array:
    d = self.dog(x)
    return jnp.concatenate([nnx.relu(d), nnx.relu(-d)], axis=-1).astype(x.dtype)

  def rf_ops(self, ndim: int) -> list[Op]:
    return [window(2 * gaussian_radius(self.surround_sigma) + 1, 1, "SAME", ndim)]

  def filters(self) -> dict[str, jax.Array]:
    """The DoG kernel [*k, 1, 1]: the response to a unit impulse (the same for every channel)."""
    size = 2 * gaussian_radius(self.surround_sigma) + 1
    impulse = np.zeros((1, *(size,) * self.ndim, 1), np.float32)
    impulse[(0, *(size // 2,) * self.ndim, 0)] = 1.0
    return {"dog": self.dog(jnp.asarray(impulse))[0][..., None]}


class GainControl(Stage):
  """Local contrast gain control: y / sqrt(c50^2 + G(sigma) * mean_c(y^2)) on [B, *S, C]."""

  kind = SPATIAL

  def __init__(self, sigma: float, semisaturation: float):
    if sigma <= 0 or semisaturation <= 0:
      raise ValueError(
        f"frontend_gain_sigma, frontend_semisaturation: must be > 0, got {sigma}, {semisaturation}"
      )
    self.sigma, self.semisaturation = float(sigma), float(semisaturation)

  def __call__(self, y: jax.Array) -> jax.Array:
    energy = gaussian_filter(
      jnp.mean(jnp.square(y), -1, keepdims=True), self.sigma, _spatial_axes(y)
    )
    # c50^2 inside the root: no division by zero on blank input, and a smooth gradient there.
    return (y / jnp.sqrt(self.semisaturation**2 + energy)).astype(y.dtype)

  def rf_ops(self, ndim: int) -> list[Op]:
    return [window(2 * gaussian_radius(self.sigma) + 1, 1, "SAME", ndim)]


def frontend_stages(
  variant: str,
  *,
  ndim: int,
  in_channels: int,
  kernel: int,
  dropout: float,
  center_sigma: float,
  surround_sigma: float,
  gain_sigma: float,
  semisaturation: float,
  conv_impl: str = "auto",
  dtype=jnp.float32,
  rngs: nnx.Rngs,
) -> tuple[list[tuple[str, Stage]], int]:
  """The front-end's (name, stage) pairs in order and the channels it outputs; the options are
  `FIELDS` without their `frontend_` prefix (`compose` fills in the defaults)."""
  if variant == "learned":
    common = dict(ndim=ndim, padding="SAME", show_filters=True, conv_impl=conv_impl, dtype=dtype)
    stages = [
      (
        name,
        TanhConv(in_channels, in_channels, kernel=kernel, dropout=dropout, rngs=rngs, **common),
      )
      for name in ("bipolar", "ganglion", "lgn")
    ]
    return stages, in_channels
  if variant == "fixed":
    retina = CentreSurround(center_sigma, surround_sigma, ndim)
    return [("retina", retina), ("lgn", GainControl(gain_sigma, semisaturation))], 2 * in_channels
  raise ValueError(f"frontend_variant: unknown {variant!r}; valid: {', '.join(VARIANTS)}")


class FrontEnded(StagedModel):
  """`front` stages, then the stages of `inner` under their own names: the wrapped model's
  parameter names (`c1.conv.kernel`, ...) do not change. A branch of `inner` that read its
  input reads the front-end's output. `input_shape`/`in_channels` are the raw input's."""

  def __init__(self, front: Sequence[tuple[str, Stage]], inner: StagedModel, in_channels: int):
    front_names = tuple(name for name, _ in front)
    clash = sorted(set(front_names) & {*inner.layer_names, *inner.branches})
    if clash:
      raise ValueError(f"frontend: stage {clash[0]!r} is also a stage of the wrapped model")
    for name, stage in front:
      setattr(self, name, stage)
    for name in (*inner.layer_names, *inner.branches):
      setattr(self, name, getattr(inner, name))
    if inner.branches:
      last = front_names[-1]
      self.branches = {
        b: tuple(last if s == INPUT else s for s in sources)
        for b, sources in inner.branches.items()
      }
    self.layer_names = (*front_names, *inner.layer_names)
    self.input_shape, self.in_channels = tuple(inner.input_shape), int(in_channels)


def compose(build: type[StagedModel], front: dict, *, rngs: nnx.Rngs, **kwargs):
  """`build(rngs=rngs, **kwargs)` (a registered model's constructor), behind the front-end
  `front` ({field: value} of FIELDS) when front['frontend'] == 'precortical'; the wrapped
  model then takes the front-end's output channels."""
  kind = front.get("frontend", "")
  if kind not in FRONTENDS:
    raise ValueError(f"frontend: unknown {kind!r}; valid: '', 'precortical'")
  if not kind:
    return build(rngs=rngs, **kwargs)
  defaults = inspect.signature(build.__init__).parameters  # a StagedModel class
  in_channels = kwargs.pop("in_channels", defaults["in_channels"].default)
  ndim = len(kwargs.get("input_shape") or defaults["input_shape"].default)
  options = {k.removeprefix("frontend_"): v for k, v in (FIELDS | front).items()}
  options.pop("frontend")
  variant = options.pop("variant")
  extra = {k: kwargs[k] for k in ("conv_impl", "dtype") if k in kwargs}
  stages, channels = frontend_stages(
    variant, ndim=ndim, in_channels=in_channels, rngs=rngs, **options, **extra
  )
  return FrontEnded(stages, build(in_channels=channels, rngs=rngs, **kwargs), in_channels)


__all__ = [
  "FIELDS",
  "FRONTENDS",
  "VARIANTS",
  "CentreSurround",
  "FrontEnded",
  "GainControl",
  "compose",
  "frontend_stages",
]
