"""Random transforms of the image before the model sees it, so the optimum is robust to them.

Without them activation maximisation finds adversarial high-frequency patterns that excite a
channel at exact pixel positions only (Mordvintsev et al. 2015, Olah et al. 2017). Every
transform keeps the image's shape (our models end in dense layers of a fixed input size): scale
and rotation resample about the centre with edge padding (bilinear, N-d), roll shifts
circularly, flips mirror. Each image of a batch draws its own transform every step.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
from jax.scipy.ndimage import map_coordinates

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class Transforms:
  """Random transforms applied every step (all off: `Transforms()`).

  roll: largest circular shift in samples along every spatial axis (uniform in [-roll, roll]);
  scale: zoom factor uniform in [1 - scale, 1 + scale] (2D and 3D);
  rotate: degrees, uniform in [-rotate, rotate], 2D only;
  flip_axes: spatial axes (0 = the first spatial axis) each mirrored with probability 1/2.
  """

  roll: int = 0
  scale: float = 0.0
  rotate: float = 0.0
  flip_axes: tuple[int, ...] = ()

  def check(self, ndim: int) -> None:
    """ValueError naming the field that does not fit images with `ndim` spatial axes."""
    if self.roll < 0 or self.scale < 0 or self.rotate < 0:
      raise ValueError(f"transforms: roll, scale and rotate must be >= 0, got {self}")
    if self.scale >= 1:
      raise ValueError(f"transforms.scale: {self.scale} must be < 1 (a zoom of 1 +- scale)")
    if self.rotate and ndim != 2:
      raise ValueError(f"transforms.rotate: rotations are 2D only; these images have {ndim} axes")
    bad = [a for a in self.flip_axes if not 0 <= a < ndim]
    if bad:
      raise ValueError(f"transforms.flip_axes: axis {bad[0]} out of range for {ndim} axes")


def default_transforms(ndim: int) -> Transforms:
  """The defaults: 2D roll 8 px, scale +-5 %, rotation +-10 degrees (DeepVisionVR's and Lucid's
  order of size); 3D roll 4 voxels and flips of every axis (the 3D training augmentation)."""
  if ndim == 2:
    return Transforms(roll=8, scale=0.05, rotate=10.0)
  return Transforms(roll=4, flip_axes=tuple(range(ndim)))


def _affine(x: Array, matrix: Array) -> Array:
  """x [*S, C] resampled as out(p) = x(c + matrix @ (p - c)), c the centre; edge padding."""
  spatial = x.shape[:-1]
  centre = jnp.asarray([(n - 1) / 2.0 for n in spatial])
  grid = jnp.stack(
    jnp.meshgrid(*[jnp.arange(n, dtype=jnp.float32) for n in spatial], indexing="ij")
  )
  flat = grid.reshape(len(spatial), -1) - centre[:, None]
  coords = (matrix @ flat + centre[:, None]).reshape(grid.shape)
  channel = lambda c: map_coordinates(c, list(coords), order=1, mode="nearest")
  return jax.vmap(channel, in_axes=-1, out_axes=-1)(x)


def random_transform(key: Array, x: Array, t: Transforms) -> Array:
  """One image x [*S, C] under a random draw of `t` (differentiable in x)."""
  ndim = x.ndim - 1
  k_zoom, k_angle, k_roll, k_flip = jax.random.split(key, 4)
  if t.scale or t.rotate:
    zoom = jax.random.uniform(k_zoom, (), minval=1.0 - t.scale, maxval=1.0 + t.scale)
    matrix = jnp.eye(ndim) / zoom  # sampling coordinates: the inverse of the zoom
    if t.rotate:
      angle = jax.random.uniform(k_angle, (), minval=-t.rotate, maxval=t.rotate) * math.pi / 180
      cos, sin = jnp.cos(angle), jnp.sin(angle)
      matrix = matrix @ jnp.array([[cos, -sin], [sin, cos]])
    x = _affine(x, matrix)
  if t.roll:
    shifts = jax.random.randint(k_roll, (ndim,), -t.roll, t.roll + 1)
    x = jnp.roll(x, shifts, axis=tuple(range(ndim)))
  if t.flip_axes:
    flips = jax.random.bernoulli(k_flip, 0.5, (len(t.flip_axes),))
    for i, axis in enumerate(t.flip_axes):
      x = jnp.where(flips[i], jnp.flip(x, axis), x)
  return x


def transform_batch(keys: Array, x: Array, t: Transforms) -> Array:
  """Images x [B, *S, C], one key each [B] -> each under its own random draw of `t`."""
  if t == Transforms():
    return x
  return jax.vmap(random_transform, in_axes=(0, 0, None))(keys, x, t)
