"""Baselines of the perturbation and path methods, chosen by name and stated in raw intensity.

`saliency` takes baselines as arrays in model-input space; this turns `Options.baseline` into
one with the run's `Normalization` (raw uint8 intensity -> model input):
- 'mean': raw intensity = the training mean, i.e. model input 0 (the default, and what the
  library's `baseline=0.0` / zeros mean for standardised inputs; for 'unit' normalisation it is
  intensity 0);
- 'zero': raw intensity 0 (air, an empty tube; black in 2D);
- 'blur': a gaussian blur of the input (`blur_sigma` voxels, every spatial axis);
- 'noise': uniform random raw intensities in 0..255 (seeded by `seed`).
"""

import jax
import jax.numpy as jnp

from bugnist_jax import saliency
from bugnist_jax.data.transforms import Normalization

BASELINES = ("mean", "zero", "blur", "noise")
IDENTITY = Normalization(0.0, 1.0, "unit")  # when no run gives one: inputs are intensity / 255


def baseline(name: str, x, norm: Normalization, blur_sigma: float, seed: int, draws: int = 1):
  """Baselines for inputs `x [B, *spatial, C]` (model-input space): `[draws, *x.shape]` for
  'noise', `[1, *x.shape]` for the others (one array; `draws` is not read)."""
  if name == "mean":
    out = jnp.zeros_like(x)[None]
  elif name == "zero":
    out = jnp.broadcast_to(norm(jnp.zeros((), jnp.uint8)).astype(x.dtype), x.shape)[None]
  elif name == "blur":
    out = saliency.gaussian_filter(x, blur_sigma, tuple(range(1, x.ndim - 1))).astype(x.dtype)[None]
  elif name == "noise":
    raw = jax.random.uniform(jax.random.key(seed), (draws, *x.shape), minval=0.0, maxval=255.0)
    out = norm(raw).astype(x.dtype)
  else:
    raise ValueError(f"baseline: expected one of {BASELINES}, got {name!r}")
  return out


def intensity_bounds(norm: Normalization, dtype) -> tuple:
  """Model inputs of raw intensities 0 and 255: the box of LRP's zbox rule."""
  return tuple(norm(jnp.full((), v, jnp.uint8)).astype(dtype) for v in (0, 255))
