"""Embedded synthetic BugNIST-like volumes: procedural 3D bugs in a tube packed with cotton.

The project's default data source: it needs no download and is generated on the fly.

Each example is a `(Z, Y, X)` uint8 micro-CT-like volume (Z is the long tube axis) holding one
bug of one of the 12 BugNIST classes (`CLASS_CODES` order), posed at random in the middle of the
tube, with fibrous "cotton" packing at both ends (low and high Z).

Bugs differ by SHAPE: segmented orthopterans with long hind legs and antennae (AC, BC, GH), flies
with flat or curled wings (BF, CF), segmented larvae (BL hairy, MA short and tapered, ML long and
thin, SL flat and wide), smooth pupae (BP and PP: deliberately similar, BP a little larger, blunter
and ring-ridged, PP smaller, more slender and pointed) and flat plated woodlice (WO). Shapes are
built from soft ellipsoids and tapered capsules in a bug frame, then rotated (spin about Z, a
tilt of up to ~35 degrees, head up or down), scaled and shifted, and rasterised with partial-volume
edges on the grid.

Cotton and the shortcut. The cotton at each end has four parameters in [0, 1]: depth (how far it
extends into the tube, 4%..19% of Z), density (fill fraction of fibres), brightness (fibre
intensity, fainter than the bug as cotton is in CT, so that the usual removal by threshold and
largest connected component works) and thickness (share of thick fibres).
Rule, with `s = shortcut_strength`: with probability `s` the four parameters are the
class's signature `COTTON_SIGNATURES[label]` (the 12 corners of a grid of 3 depths x 2 densities
x 2 brightnesses; thickness follows density) plus uniform jitter of +-0.07; otherwise they are
drawn uniformly from [0, 1]^4, independent of the class. So a classifier that reads only the
cotton can reach about `s + (1 - s) / 12` accuracy: chance at `s = 0`, near perfect at `s = 1`.
The cotton never touches the bug: it stops at 19% of Z from each end and the bug is fitted inside
the central 22%..78% of Z, so the cotton's depth does not depend on the bug either.

Determinism: example `i` of a source with seed `s` is drawn from `np.random.default_rng([s, i])`
and has label `i % 12`.
"""

import numpy as np

from bugnist_jax.data.classes import CLASS_CODES
from bugnist_jax.data.sources import IndexedSource
from bugnist_jax.data.synthetic3d.bugs import BUGS, Parts
from bugnist_jax.data.synthetic3d.cotton import COTTON_SIGNATURES, cotton_params, draw_cotton
from bugnist_jax.data.synthetic3d.raster import blur, pose, rasterise
from bugnist_jax.errors import UserError

NUM_CLASSES = len(CLASS_CODES)
__all__ = [
  "NUM_CLASSES",
  "SyntheticBugSource",
  "cotton_params",
  "generate_example",
  "COTTON_SIGNATURES",
]


def _check(shape: tuple[int, int, int], shortcut_strength: float) -> tuple[int, int, int]:
  shape = tuple(int(s) for s in shape)
  if len(shape) != 3 or min(shape) < 8:
    raise UserError(f"shape: {shape} must be three sizes (Z, Y, X), each >= 8")
  if not 0.0 <= shortcut_strength <= 1.0:
    raise UserError(f"shortcut_strength: {shortcut_strength} must be in [0, 1]")
  return shape


def generate_example(
  seed: int, index: int, shape=(64, 32, 32), shortcut_strength: float = 0.5
) -> dict[str, np.ndarray]:
  """Example `index` of the synthetic set with `seed`; label `index % 12`.

  Returns dict(image=uint8 [Z, Y, X, 1], label=int32 [], object_mask=uint8 [Z, Y, X] (1 on
  the bug), shortcut_mask=uint8 [Z, Y, X] (1 on the cotton fibres)).
  """
  shape = _check(shape, shortcut_strength)
  label = index % NUM_CLASSES
  rng = np.random.default_rng([seed, index])
  # Cotton first, so its draws do not depend on how many draws the bug's shape takes.
  cot_mask, cot_val = draw_cotton(rng, cotton_params(rng, label, shortcut_strength), shape)
  build, params = BUGS[CLASS_CODES[label]]
  parts = Parts(rng)
  build(parts, params)
  occ, val = rasterise(*pose(parts, shape), shape)
  signal = val * rng.uniform(170, 220)  # tissue intensity: denser than the cotton
  np.maximum(signal, cot_val, out=signal)
  np.maximum(signal, rng.uniform(20, 40), out=signal)  # background
  # Uniform noise is 4x cheaper to draw than normal; the blur below makes it near-Gaussian.
  noise = rng.random(shape, dtype=np.float32)
  noise -= 0.5
  signal += noise * (3.46 * rng.uniform(16, 24))  # sqrt(12) * std
  signal = blur(signal)
  signal += 0.5  # round, not truncate
  image = np.clip(signal, 0, 255, out=signal).astype(np.uint8)
  return dict(
    image=image[..., None],
    label=np.int32(label),
    object_mask=(occ >= 0.5).astype(np.uint8),
    shortcut_mask=cot_mask.astype(np.uint8),
  )


class SyntheticBugSource(IndexedSource):
  """Grain RandomAccessDataSource of synthetic BugNIST-like volumes, generated on access.

  Stateless apart from its arguments, hence thread-safe and picklable.
  """

  def __init__(
    self,
    num_examples: int,
    shape=(64, 32, 32),
    seed: int = 0,
    shortcut_strength: float = 0.5,
  ):
    if num_examples < 1:
      raise UserError(f"num_examples: {num_examples} must be >= 1")
    self.num_examples = int(num_examples)
    self.shape = _check(shape, shortcut_strength)
    self.seed = int(seed)
    self.shortcut_strength = float(shortcut_strength)

  def record(self, i: int) -> dict[str, np.ndarray]:
    return generate_example(self.seed, i, self.shape, self.shortcut_strength)

  def labels(self) -> np.ndarray:
    """int32 [N] labels without generating volumes."""
    return (np.arange(self.num_examples) % NUM_CLASSES).astype(np.int32)

  def __repr__(self) -> str:
    return (
      f"SyntheticBugSource(num_examples={self.num_examples}, shape={self.shape}, "
      f"seed={self.seed}, shortcut_strength={self.shortcut_strength})"
    )
