"""Light changes of images: Fioresi and Petkovic's brightness and contrast transforms as pure
functions, and their random version for training (`config.data.light_augment`).

The transforms act on intensities in [0, 1], as the authors' (ToTensor, no normalisation):
- brightness: x -> x - mu (mu > 0 darkens);
- contrast: x -> (x - <x>) / sigma + <x>, with <x> the image's mean over all pixels (voxels)
  and channels (sigma > 1 lowers the contrast, sigma < 1 raises it).
Both are affine in x per image, and they commute (the contrast keeps the mean, which moves
with mu). Nothing is clipped, as in the authors' sweeps. `on_inputs` applies a transform to
model inputs of any `Normalization` (it inverts to intensities, transforms, normalises back).

Training: `LightJitter` (a grain random map) draws mu ~ U(light_mu) and sigma ~ U(light_sigma)
per item into the record (`light_mu`, `light_sigma`), so the draw is seeded and resumes with
the data iterator; the train step applies them to the model inputs (`jitter_inputs`). The
authors draw mu ~ U(-2, 2) (added, the same distribution) and sigma ~ U(-0.1, 4), which holds
zero and negative divisors; our default sigma range is (0.1, 4), and the augmentation is off
unless `light_augment` is set (theirs is always on: the flag is a string, so 'False' is true).
"""

import dataclasses

import grain
import jax
import jax.numpy as jnp
import numpy as np

from bugnist_jax.errors import UserError

KEYS = ("light_mu", "light_sigma")  # what LightJitter adds to a record


def _per_image(value, x: jax.Array) -> jax.Array:
  """A scalar or [B] value shaped to broadcast over x [B, *S, C]."""
  value = jnp.asarray(value, jnp.float32)
  return value.reshape(value.shape + (1,) * (x.ndim - value.ndim)) if value.ndim else value


def image_mean(x: jax.Array) -> jax.Array:
  """<x>: each image's mean over all pixels and channels, [B, 1, ..., 1] for x [B, *S, C]."""
  return jnp.mean(x, axis=tuple(range(1, x.ndim)), keepdims=True)


def brightness(x: jax.Array, mu) -> jax.Array:
  """x - mu for intensities x [B, *S, C]; mu a scalar or one value per image [B]."""
  return x - _per_image(mu, x)


def contrast(x: jax.Array, sigma) -> jax.Array:
  """(x - <x>) / sigma + <x> for intensities x [B, *S, C]; sigma a scalar or [B], nonzero."""
  m = image_mean(x)
  return (x - m) / _per_image(sigma, x) + m


def on_inputs(transform, inputs: jax.Array, norm, *args) -> jax.Array:
  """`transform(intensities, *args)` for model inputs [B, *S, C] of the Normalization `norm`:
  inverted to intensities, transformed, normalised back."""
  return norm.from_intensities(transform(norm.invert(inputs), *args))


def jitter_inputs(inputs: jax.Array, batch: dict, norm) -> jax.Array:
  """The training batch's light draws (`LightJitter`) applied to its model inputs; the inputs
  unchanged when the batch has none."""
  if KEYS[0] not in batch:
    return inputs
  jitter = lambda x, mu, sigma: brightness(contrast(x, sigma), mu)
  return on_inputs(jitter, inputs, norm, batch["light_mu"], batch["light_sigma"])


@dataclasses.dataclass(frozen=True)
class LightJitter(grain.transforms.RandomMap):
  """Adds `light_mu` ~ U(*mu) and `light_sigma` ~ U(*sigma) (float32 scalars) to a record."""

  mu: tuple[float, float] = (-2.0, 2.0)
  sigma: tuple[float, float] = (0.1, 4.0)

  def random_map(self, record: dict, rng: np.random.Generator) -> dict:
    return {
      **record,
      "light_mu": np.float32(rng.uniform(*self.mu)),
      "light_sigma": np.float32(rng.uniform(*self.sigma)),
    }

  @classmethod
  def from_config(cls, cfg) -> "LightJitter":
    """From config.data's `light_mu` and `light_sigma` ranges; UserError naming a bad one."""
    ranges = {}
    for field in ("light_mu", "light_sigma"):
      value = tuple(float(v) for v in cfg[field])
      if len(value) != 2 or value[0] > value[1]:
        raise UserError(f"config.data.{field}: {value} must be a range (low, high), low <= high")
      ranges[field] = value
    if ranges["light_sigma"][0] <= 0:
      raise UserError(
        f"config.data.light_sigma: {ranges['light_sigma']} must be positive (a contrast divisor)"
      )
    return cls(ranges["light_mu"], ranges["light_sigma"])


__all__ = [
  "KEYS",
  "LightJitter",
  "brightness",
  "contrast",
  "image_mean",
  "jitter_inputs",
  "on_inputs",
]
