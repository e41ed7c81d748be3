"""Image parameterisations: what the optimiser moves, and the image the model sees.

An image is made in two steps. A spatial basis gives a latent image `z [*S, C]` from the
parameters: 'pixel' is the identity (the parameters are the latent image), 'fourier' is an
N-d inverse real FFT of a spectrum whose coefficients are scaled by 1 / |f|^decay_power, so
that equal steps on every coefficient make an image with natural images' 1/f falloff instead of
white noise (Olah et al., Distill 2017). Then a colour map decorrelates the channels (`z @
color.T`, `color` a square root of the data's channel covariance, `color_correlation`) and,
with `value_range`, a sigmoid squashes the result into the range of valid model inputs.

Blur acts on the latent image: a product with the Gaussian's transfer function, exact for
both bases (circular boundary, as the roll transform).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
PARAMETERIZATIONS = ("pixel", "fourier")
_EPS = 1e-4  # keeps the inverse sigmoid of an initial image finite at the range's ends


def frequencies(spatial: tuple[int, ...]) -> np.ndarray:
  """|f| in cycles per sample of the rfftn grid of `spatial`: [*spatial[:-1], spatial[-1]//2+1]."""
  axes = [np.fft.fftfreq(n) for n in spatial[:-1]] + [np.fft.rfftfreq(spatial[-1])]
  grids = np.meshgrid(*axes, indexing="ij")
  return np.sqrt(sum(g**2 for g in grids)).astype(np.float32)


def color_correlation(images) -> np.ndarray:
  """A square root of the channel covariance of `images` [N, *S, C]: [C, C], columns scaled so
  the largest has norm 1 (Lucid's convention: unit latent steps stay unit steps at most).

  Pass it as `color` so the optimiser works in decorrelated colour space.
  """
  x = np.asarray(images, np.float64)
  flat = x.reshape(-1, x.shape[-1])
  cov = np.cov(flat, rowvar=False).reshape(x.shape[-1], x.shape[-1])
  values, vectors = np.linalg.eigh(cov)
  root = vectors @ np.diag(np.sqrt(np.clip(values, 1e-12, None))) @ vectors.T
  return (root / np.linalg.norm(root, axis=0).max()).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class ImageParam:
  """A parameterisation of images [*spatial, channels] (hashable: a jit static argument).

  kind: 'pixel' or 'fourier'; decay_power: the 1/|f| exponent of 'fourier'; color: [C, C] as
  nested tuples, or None for the identity; value_range: (lo, hi) of valid model inputs, or None
  for unbounded images.
  """

  spatial: tuple[int, ...]
  channels: int
  kind: str = "fourier"
  decay_power: float = 1.0
  color: tuple[tuple[float, ...], ...] | None = None
  value_range: tuple[float, float] | None = None

  @property
  def axes(self) -> tuple[int, ...]:
    """Spatial axes of a batch of latent images [B, *S, C]."""
    return tuple(range(1, len(self.spatial) + 1))

  def param_shape(self) -> tuple[int, ...]:
    """Shape of one image's parameters: [*S, C] (pixel) or [*F, C, 2] (fourier, real/imag)."""
    if self.kind == "pixel":
      return (*self.spatial, self.channels)
    return (*self.spatial[:-1], self.spatial[-1] // 2 + 1, self.channels, 2)

  def _scale(self) -> np.ndarray:
    """Per-coefficient scale [*F]: 1/max(|f|, 1/max(S))^decay_power, RMS 1 (so unit spectrum
    steps give image steps of a size that does not depend on the image size)."""
    f = np.maximum(frequencies(self.spatial), 1.0 / max(self.spatial))
    scale = f ** (-self.decay_power)
    return (scale / np.sqrt(np.mean(scale**2))).astype(np.float32)

  def _color(self) -> Array:
    return jnp.eye(self.channels) if self.color is None else jnp.asarray(self.color, jnp.float32)

  def latent(self, params: Array) -> Array:
    """Parameters [B, *param_shape] -> latent images [B, *S, C]."""
    if self.kind == "pixel":
      return params
    spectrum = jax.lax.complex(params[..., 0], params[..., 1])
    spectrum = spectrum * self._scale()[..., None]
    return jnp.fft.irfftn(spectrum, s=self.spatial, axes=self.axes, norm="ortho")

  def image(self, params: Array) -> Array:
    """Parameters [B, *param_shape] -> images [B, *S, C] in model-input space."""
    z = self.latent(params) @ self._color().T
    if self.value_range is None:
      return z
    lo, hi = self.value_range
    return lo + (hi - lo) * jax.nn.sigmoid(z)

  def params_of(self, images: Array) -> Array:
    """The inverse of `image`: images [B, *S, C] -> parameters (inputs clipped into the open
    value range first)."""
    z = jnp.asarray(images, jnp.float32)
    if self.value_range is not None:
      lo, hi = self.value_range
      u = jnp.clip((z - lo) / (hi - lo), _EPS, 1.0 - _EPS)
      z = jnp.log(u) - jnp.log1p(-u)
    z = z @ jnp.linalg.inv(self._color()).T
    if self.kind == "pixel":
      return z
    spectrum = jnp.fft.rfftn(z, axes=self.axes, norm="ortho") / self._scale()[..., None]
    return jnp.stack([spectrum.real, spectrum.imag], axis=-1)

  def random(self, key: Array, scale: float) -> Array:
    """One image's random parameters [*param_shape]: N(0, scale^2) per entry."""
    return scale * jax.random.normal(key, self.param_shape(), jnp.float32)

  def blur(self, params: Array, sigma: float) -> Array:
    """Parameters of the latent image blurred by a Gaussian of `sigma` samples (circular)."""
    if sigma <= 0:
      return params
    gain = np.exp(-2.0 * (np.pi * sigma * frequencies(self.spatial)) ** 2).astype(np.float32)
    if self.kind == "fourier":
      return params * gain[..., None, None]
    spectrum = jnp.fft.rfftn(params, axes=self.axes) * gain[..., None]
    return jnp.fft.irfftn(spectrum, s=self.spatial, axes=self.axes)
