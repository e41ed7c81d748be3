"""The light study's measurements of one trained run, on its test split (numpy in, numbers out).

- accuracy under Fioresi and Petkovic's brightness (x - mu) and contrast ((x - <x>) / sigma +
  <x>) changes over a grid (`data.light`);
- Kang et al.'s distance to the optimal constant solution: the mean over test images of
  KL(p(x) || training label marginal) as Gaussian noise, blur and a brightness shift grow
  (predictions should fall toward the marginal, so the KL toward 0, as inputs move out of
  distribution);
- Chen et al.'s smoothness: the total variation of the first stage's activation maps on clean
  and on noisy inputs (sum over spatial axes of the mean |difference| of neighbours, per
  channel, averaged over channels and images: TV per position, comparable across map sizes).
Every shift acts on intensities in [0, 1] and is fed to the model through the run's
`Normalization`, so the numbers mean the same for any normalisation.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from bugnist_jax import compile, saliency
from bugnist_jax.data import light
from bugnist_jax.models.adapters import stage_fn

SHIFTS = ("noise", "blur", "brightness")  # Kang et al.'s shifts, in order of the report


def _spatial(x) -> tuple[int, ...]:
  return tuple(range(1, x.ndim - 1))


def shifted(kind: str, z: np.ndarray, level: float, seed: int = 0) -> jax.Array:
  """Intensities z [N, *S, C] after shift `kind` of size `level`: 'noise' adds N(0, level^2)
  (seeded, the same draw for every model), 'blur' is a Gaussian of std `level` pixels,
  'brightness' is x - level, 'contrast' the contrast change of std divisor `level`."""
  z = jnp.asarray(z, jnp.float32)
  if kind == "noise":
    noise = np.random.default_rng(seed).standard_normal(z.shape).astype(np.float32)
    return z + level * noise
  if kind == "blur":
    return saliency.gaussian_filter(z, float(level), _spatial(z)) if level > 0 else z
  if kind == "brightness":
    return light.brightness(z, level)
  if kind == "contrast":
    return light.contrast(z, level)
  raise ValueError(f"shift: unknown {kind!r}; valid: noise, blur, brightness, contrast")


def batched(fn: Callable, x: jax.Array, batch_size: int) -> np.ndarray:
  """fn over x [N, ...] in chunks of exactly `batch_size` (the last padded), so a jitted `fn`
  compiles once; the outputs [N, ...] stacked."""
  n, out = x.shape[0], []
  for start in range(0, n, batch_size):
    chunk = x[start : start + batch_size]
    pad = batch_size - chunk.shape[0]
    if pad:
      chunk = jnp.concatenate([chunk, jnp.repeat(chunk[-1:], pad, axis=0)])
    out.append(np.asarray(fn(chunk))[: batch_size - pad])
  return np.concatenate(out)


class Probe:
  """A trained model as functions of intensities: class probabilities and first-stage maps."""

  def __init__(self, model, normalization, batch_size: int):
    self.norm, self.batch_size = normalization, batch_size
    self.first = model.layer_names[0]
    logits, first = stage_fn(model), stage_fn(model, stop=self.first)
    self._probs = compile.jit(lambda z: jax.nn.softmax(logits(self.norm.from_intensities(z)), -1))
    self._first = compile.jit(lambda z: first(self.norm.from_intensities(z)))

  def probs(self, z) -> np.ndarray:
    """Class probabilities [N, K] for intensities z [N, *S, C]."""
    return batched(self._probs, jnp.asarray(z, jnp.float32), self.batch_size)

  def first_maps(self, z) -> np.ndarray:
    """The first trunk stage's activations [N, *S', C'] for intensities z."""
    return batched(self._first, jnp.asarray(z, jnp.float32), self.batch_size)


def kl_to_marginal(probs: np.ndarray, marginal: np.ndarray) -> float:
  """Mean over rows of KL(p || marginal) = sum_c p log(p / q); probs [N, K], marginal [K]."""
  p = np.clip(np.asarray(probs, np.float64), 1e-12, 1.0)
  q = np.clip(np.asarray(marginal, np.float64), 1e-12, 1.0)
  return float(np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=-1)))


def total_variation(maps: np.ndarray) -> float:
  """Chen et al.'s anisotropic TV of activation maps [N, *S, C], per position: the sum over
  spatial axes of the mean |neighbour difference|, averaged over channels and images."""
  maps = np.asarray(maps, np.float64)
  axes = _spatial(maps)
  per_axis = [np.abs(np.diff(maps, axis=a)).mean(axis=axes) for a in axes if maps.shape[a] > 1]
  return float(np.mean(np.sum(per_axis, axis=0))) if per_axis else 0.0


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
  return float(np.mean(np.argmax(probs, -1) == labels))


def measure(probe: Probe, z: np.ndarray, labels: np.ndarray, marginal: np.ndarray, s) -> dict:
  """Every number of one model: test accuracy clean and along the brightness (`s.mu_grid`) and
  contrast (`s.sigma_grid`) sweeps; KL to `marginal` and accuracy along each of `SHIFTS`
  (`s.kl_noise`, `s.kl_blur`, `s.kl_brightness`); first-stage TV clean and with noise of std
  `s.tv_noise`. z: test intensities [N, *S, C]; labels [N]."""
  clean = probe.probs(z)
  out = {"clean_accuracy": accuracy(clean, labels)}
  for kind, grid in (("brightness", s.mu_grid), ("contrast", s.sigma_grid)):
    out[kind] = [accuracy(probe.probs(shifted(kind, z, v)), labels) for v in grid]
  out["kl"], out["kl_accuracy"] = {}, {}
  for kind in SHIFTS:
    probs = [probe.probs(shifted(kind, z, v, s.seed)) for v in s[f"kl_{kind}"]]
    out["kl"][kind] = [kl_to_marginal(p, marginal) for p in probs]
    out["kl_accuracy"][kind] = [accuracy(p, labels) for p in probs]
  tv_clean = total_variation(probe.first_maps(z))
  tv_noisy = total_variation(probe.first_maps(shifted("noise", z, s.tv_noise, s.seed)))
  out["tv"] = {"stage": probe.first, "clean": tv_clean, "noisy": tv_noisy}
  return out


def label_marginal(labels: np.ndarray, num_classes: int) -> np.ndarray:
  """The training label marginal [K]: Kang et al.'s optimal constant solution for cross-entropy."""
  counts = np.bincount(np.asarray(labels), minlength=num_classes).astype(np.float64)
  return counts / max(counts.sum(), 1.0)


def value_at(grid, values, point: float) -> float:
  """values[i] at the grid point nearest `point` (the table's columns)."""
  grid = np.asarray(grid, np.float64)
  return float(np.asarray(values)[int(np.argmin(np.abs(grid - point)))])


__all__ = [
  "SHIFTS",
  "Probe",
  "accuracy",
  "batched",
  "kl_to_marginal",
  "label_marginal",
  "measure",
  "shifted",
  "total_variation",
  "value_at",
]
