"""grain pipelines: shuffled, augmented training batches and padded evaluation batches."""

import dataclasses
from collections.abc import Iterator, Sequence

import grain
import numpy as np

from bugnist_jax.data import transforms
from bugnist_jax.errors import UserError


class SubsetSource:
  """The items `indices` of a source, itself a grain RandomAccessDataSource."""

  def __init__(self, source, indices: Sequence[int]):
    self.source = source
    self.indices = np.asarray(indices, np.int64)

  def __len__(self) -> int:
    return len(self.indices)

  def __getitem__(self, i: int) -> dict:
    return self.source[int(self.indices[i])]

  def __repr__(self) -> str:
    return f"SubsetSource({self.source!r}, {len(self.indices)} items)"

  def labels(self) -> np.ndarray:
    return np.asarray(self.source.labels())[self.indices]


@dataclasses.dataclass(frozen=True)
class RemovePacking(grain.transforms.Map):
  """Removes the packing material (cotton) by threshold + largest connected component."""

  threshold: int
  min_size: int = 0

  def map(self, record: dict) -> dict:
    return {**record, "image": transforms.remove_packing(record["image"], self.threshold,
                                                          self.min_size)}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class MaskFromThreshold(grain.transforms.Map):
  """Sets `mask` [*spatial] uint8 to the largest connected component above `threshold` (the
  bug), so right-for-the-right-reasons training works on data without ground-truth masks."""

  threshold: int

  def map(self, record: dict) -> dict:
    kept = transforms.remove_packing(record["image"], self.threshold)[..., 0]
    return {**record, "mask": (kept > self.threshold).astype(np.uint8)}


class ShuffledLabels:
  """A source whose labels are a seeded permutation of its own (data randomisation test,
  Adebayo et al. 2018): class balance is kept and each item keeps its random label every epoch."""

  def __init__(self, source, seed: int):
    self.source = source
    perm = np.random.default_rng(seed).permutation(len(source))
    self._labels = np.asarray(source.labels(), np.int32)[perm]

  def __len__(self) -> int:
    return len(self.source)

  def __getitem__(self, i: int) -> dict:
    return {**self.source[i], "label": np.int32(self._labels[i])}

  def __repr__(self) -> str:
    return f"ShuffledLabels({self.source!r})"

  def labels(self) -> np.ndarray:
    return self._labels


class FlipRotate(grain.transforms.RandomMap):
  """Random flips and 90-degree rotations; masks in the record move with the image."""

  def random_map(self, record: dict, rng: np.random.Generator) -> dict:
    keys = [k for k in ("mask", "cotton") if k in record]
    image, *extras = transforms.random_flip_rotate(record["image"], rng, *(record[k] for k in keys))
    return {**record, "image": image, **dict(zip(keys, extras, strict=True))}


class HorizontalFlip(grain.transforms.RandomMap):
  """Flips a 2D image [H, W, C] left-right with probability 1/2 (natural images: no rotations).

  `mask` [H, W] flips with it and `box` (y0, x0, y1, x1), x1 exclusive, is mirrored.
  """

  def random_map(self, record: dict, rng: np.random.Generator) -> dict:
    if rng.random() >= 0.5:
      return record
    out = {**record, "image": np.ascontiguousarray(record["image"][:, ::-1])}
    if "mask" in record:
      out["mask"] = np.ascontiguousarray(record["mask"][:, ::-1])
    if "box" in record:
      y0, x0, y1, x1 = np.asarray(record["box"]).tolist()
      width = record["image"].shape[1]
      out["box"] = np.array([y0, width - x1, y1, width - x0], np.int32)
    return out


# config.data.augment: True (or 'flip_rotate') = FlipRotate, 'hflip' = HorizontalFlip.
AUGMENTATIONS = {"flip_rotate": FlipRotate, "hflip": HorizontalFlip}


def _record_transforms(packing: RemovePacking | None) -> list:
  return [packing] if packing is not None else []


def train_dataset(
  source,
  *,
  batch_size: int,
  seed: int,
  augment: bool | str = True,
  packing: RemovePacking | None = None,
  num_workers: int = 0,
  prefetch_buffer: int = 2,
  extra_transforms: Sequence[grain.transforms.Map] = (),
) -> grain.IterDataset:
  """Endless training batches: a fresh seeded shuffle every epoch, whole batches only.

  Its iterator's state (`grain.checkpoint.CheckpointSave`) pins the position in the stream,
  so a resumed run sees exactly the batches an uninterrupted one would. `extra_transforms`
  (e.g. `MaskFromThreshold`) run after the packing removal, before augmentation.
  """
  ds = grain.MapDataset.source(source).seed(seed).shuffle().repeat(None)
  for t in [*_record_transforms(packing), *extra_transforms]:
    ds = ds.map(t)
  if augment:
    kind = "flip_rotate" if augment is True else augment
    if kind not in AUGMENTATIONS:
      raise UserError(
        f"config.data.augment: unknown {augment!r}; valid: True, False, {', '.join(AUGMENTATIONS)}"
      )
    ds = ds.random_map(AUGMENTATIONS[kind]())
  ds = ds.batch(batch_size, drop_remainder=True)
  it = ds.to_iter_dataset(grain.ReadOptions(num_threads=2, prefetch_buffer_size=prefetch_buffer))
  if num_workers > 0:
    it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers))
  return it


def eval_batches(
  source, *, batch_size: int, packing: RemovePacking | None = None
) -> Iterator[dict[str, np.ndarray]]:
  """Every item once, in order, in batches of exactly `batch_size`.

  The last batch is padded by repeating its final item and carries `valid` [B] (False on
  padding), so evaluation compiles once and counts every item exactly once.
  """
  ds = grain.MapDataset.source(source)
  for t in _record_transforms(packing):
    ds = ds.map(t)
  n = len(source)
  for start in range(0, n, batch_size):
    records = [ds[i] for i in range(start, min(start + batch_size, n))]
    valid = np.zeros(batch_size, bool)
    valid[: len(records)] = True
    records += [records[-1]] * (batch_size - len(records))
    batch = {k: np.stack([r[k] for r in records]) for k in records[0]}
    batch["valid"] = valid
    yield batch
