"""Data sources: the record contract, a base class for sources, and wrappers of sources.

A source is a grain `RandomAccessDataSource`: `len(src)`, a deterministic, thread-safe
`src[i]` returning one record, `repr(src)`, and `src.labels()` (int32 `[N]`, read without
loading images). It must pickle (hold paths, open files lazily).

A record is a dict of numpy arrays:
- `image`: uint8 `[*spatial, C]` (3D volumes `[Z, Y, X, 1]`, 2D images `[H, W, C]`);
- `label`: int32 scalar;
- `object_mask` (optional): uint8 `[*spatial]`, 1 on the object (the bug), else 0;
- `shortcut_mask` (optional): uint8 `[*spatial]`, 1 on a confound that can give the class
  away (the cotton packing of BugNIST), else 0;
- `object_box` (optional, 2D): int32 `[4]` (y0, x0, y1, x1) of the object, y1/x1 exclusive.
"""

from collections.abc import Sequence

import numpy as np

MASK_KEYS = ("object_mask", "shortcut_mask")  # spatial masks that move with the image


class IndexedSource:
  """Base class: subclasses set `self.num_examples` and define `record(i)` and `labels()`.

  `src[i]` checks the index (negative indices count from the end, as for lists) and calls
  `record(i)` with 0 <= i < len.
  """

  num_examples: int

  def __len__(self) -> int:
    return self.num_examples

  def __getitem__(self, i: int) -> dict[str, np.ndarray]:
    i = int(i)
    if not -self.num_examples <= i < self.num_examples:
      raise IndexError(f"index {i} out of range for {self.num_examples} examples")
    return self.record(i % self.num_examples)

  def record(self, i: int) -> dict[str, np.ndarray]:
    raise NotImplementedError

  def labels(self) -> np.ndarray:
    raise NotImplementedError


class SubsetSource(IndexedSource):
  """The items `indices` of a source, itself a source."""

  def __init__(self, source, indices: Sequence[int]):
    self.source = source
    self.indices = np.asarray(indices, np.int64)
    self.num_examples = len(self.indices)

  def record(self, i: int) -> dict:
    return self.source[int(self.indices[i])]

  def __repr__(self) -> str:
    return f"SubsetSource({self.source!r}, {len(self.indices)} items)"

  def labels(self) -> np.ndarray:
    return np.asarray(self.source.labels())[self.indices]


class ShuffledLabels(IndexedSource):
  """A source whose labels are a seeded permutation of its own (data randomisation test,
  Adebayo et al. 2018): class balance is kept and each item keeps its random label every epoch."""

  def __init__(self, source, seed: int):
    self.source = source
    self.num_examples = len(source)
    perm = np.random.default_rng(seed).permutation(len(source))
    self._labels = np.asarray(source.labels(), np.int32)[perm]

  def record(self, i: int) -> dict:
    return {**self.source[i], "label": np.int32(self._labels[i])}

  def __repr__(self) -> str:
    return f"ShuffledLabels({self.source!r})"

  def labels(self) -> np.ndarray:
    return self._labels


class NoisyCopies(IndexedSource):
  """DeepVisionVR's "noisy samples" regime: the items once with their labels, then `copies`
  copies of them, each with white noise and a random label (uniform over `num_classes`).

  Item `i < N` is item i of `source`; item `N * c + j` (c >= 1) is item j plus noise drawn from
  `default_rng([seed, N * c + j])` with the random label drawn once from `seed`, so a copy's
  noise and label are the same every epoch and after a resume, whatever the order of access.

  The noise is added to the uint8 image (the record contract: records stay uint8 up to the
  jitted step), in intensity units: `noise_std` is a fraction of the full range 0..255, then
  rounded and clipped. That is noise of `noise_std / normalization.std` in model-input units
  (DeepVisionVR adds it after normalisation), up to the clipping at 0 and 255.
  """

  def __init__(self, source, copies: int, noise_std: float, seed: int, num_classes: int):
    if copies < 0 or noise_std < 0 or num_classes < 1:
      raise ValueError(f"copies {copies}, noise_std {noise_std}, num_classes {num_classes}")
    self.source, self.copies, self.noise_std, self.seed = source, copies, noise_std, seed
    self.base = len(source)
    self.num_examples = self.base * (1 + copies)
    random = np.random.default_rng([seed, 0]).integers(0, num_classes, self.base * copies)
    self._labels = np.concatenate([np.asarray(source.labels(), np.int32), random.astype(np.int32)])

  def record(self, i: int) -> dict:
    item = self.source[i % self.base]
    if i < self.base:
      return item
    image = item["image"]
    noise = np.random.default_rng([self.seed, i]).standard_normal(image.shape, np.float32)
    noisy = np.clip(np.rint(image + noise * (255.0 * self.noise_std)), 0, 255).astype(np.uint8)
    return {**item, "image": noisy, "label": np.int32(self._labels[i])}

  def is_copy(self) -> np.ndarray:
    """bool [len]: True on the noisy copies."""
    return np.arange(self.num_examples) >= self.base

  def __repr__(self) -> str:
    return f"NoisyCopies({self.source!r}, copies={self.copies}, noise_std={self.noise_std})"

  def labels(self) -> np.ndarray:
    return self._labels


class CachedSource(IndexedSource):
  """`source` with every record kept in memory after its first read (for small data whose
  records are expensive to make, e.g. generated ones read many times per epoch). Records are
  shared between reads: transforms must not change arrays in place (none of ours do)."""

  def __init__(self, source):
    self.source = source
    self.num_examples = len(source)
    self._cache: dict[int, dict] = {}

  def record(self, i: int) -> dict:
    if i not in self._cache:  # two threads may both read an item once: harmless
      self._cache[i] = self.source[i]
    return self._cache[i]

  def __getstate__(self) -> dict:  # worker processes start with an empty cache
    return {**self.__dict__, "_cache": {}}

  def __repr__(self) -> str:
    return f"CachedSource({self.source!r})"

  def labels(self) -> np.ndarray:
    return self.source.labels()
