"""grain pipelines: record transforms, shuffled augmented training batches, padded eval batches."""

import dataclasses
from collections.abc import Iterator, Sequence

import grain
import numpy as np

from bugnist_jax import interrupts
from bugnist_jax.data import transforms
from bugnist_jax.data.sources import MASK_KEYS
from bugnist_jax.errors import UserError


@dataclasses.dataclass(frozen=True)
class RemovePacking(grain.transforms.Map):
  """Removes the packing material (cotton) by threshold + largest connected component."""

  threshold: int
  min_size: int = 0

  def map(self, record: dict) -> dict:
    return {
      **record,
      "image": transforms.remove_packing(record["image"], self.threshold, self.min_size),
    }


@dataclasses.dataclass(frozen=True)
class MaskFromThreshold(grain.transforms.Map):
  """Sets `object_mask` [*spatial] uint8 to the largest connected component above `threshold`
  (the bug), so right-for-the-right-reasons training works on data without ground-truth masks.

  `packing_removed`: the image already went through `RemovePacking` at this threshold, so it
  holds that component only and the mask is the voxels above the threshold (no second labelling).
  """

  threshold: int
  packing_removed: bool = False

  def map(self, record: dict) -> dict:
    image = record["image"]
    if not record.get("annotated", 1):  # an item left unannotated stays so (PartlyAnnotated)
      return {**record, "object_mask": np.zeros(image.shape[:-1], np.uint8)}
    if not self.packing_removed:
      image = transforms.remove_packing(image, self.threshold)
    return {**record, "object_mask": (image[..., 0] > self.threshold).astype(np.uint8)}


class FlipRotate(grain.transforms.RandomMap):
  """Random flips and 90-degree rotations; masks in the record move with the image."""

  def random_map(self, record: dict, rng: np.random.Generator) -> dict:
    keys = [k for k in MASK_KEYS if k in record]
    image, *extras = transforms.random_flip_rotate(record["image"], rng, *(record[k] for k in keys))
    return {**record, "image": image, **dict(zip(keys, extras, strict=True))}


class HorizontalFlip(grain.transforms.RandomMap):
  """Flips a 2D image [H, W, C] left-right with probability 1/2 (natural images: no rotations).

  Masks in the record flip with it and `object_box` (y0, x0, y1, x1), x1 exclusive, is mirrored.
  """

  def random_map(self, record: dict, rng: np.random.Generator) -> dict:
    if rng.random() >= 0.5:
      return record
    out = {**record, "image": np.ascontiguousarray(record["image"][:, ::-1])}
    for key in MASK_KEYS:
      if key in record:
        out[key] = np.ascontiguousarray(record[key][:, ::-1])
    if "object_box" in record:
      y0, x0, y1, x1 = np.asarray(record["object_box"]).tolist()
      width = record["image"].shape[1]
      out["object_box"] = np.array([y0, width - x1, y1, width - x0], np.int32)
    return out


# config.data.augment: 'flip_rotate' (volumes), 'hflip' (natural images) or 'none'.
AUGMENTATIONS = {"flip_rotate": FlipRotate, "hflip": HorizontalFlip, "none": None}


def augmentation(augment: bool | str) -> grain.transforms.RandomMap | None:
  """The random transform of config.data.augment (True/False from configs saved before it was a
  string mean 'flip_rotate'/'none'); UserError for an unknown name."""
  kind = {True: "flip_rotate", False: "none"}.get(augment, augment)
  if kind not in AUGMENTATIONS:
    raise UserError(f"config.data.augment: unknown {augment!r}; valid: {', '.join(AUGMENTATIONS)}")
  return AUGMENTATIONS[kind]() if AUGMENTATIONS[kind] else None


class ProcessRows(grain.MapDataset):
  """Process `process_index`'s rows of every global batch of `global_batch` elements of
  `parent`: rows [p * b, (p + 1) * b) with b = global_batch // process_count. The processes
  together read each element once, and global batch k is the same whatever their number."""

  _MUTATES_ELEMENT_SPEC = False

  def __init__(self, parent: grain.MapDataset, global_batch: int, process_index, process_count):
    super().__init__(parent)
    self._global, self._local = global_batch, global_batch // process_count
    self._offset = process_index * self._local
    self._length = len(parent) // global_batch * self._local

  def __len__(self) -> int:
    return self._length

  def __getitem__(self, index):
    if isinstance(index, slice):
      return self.slice(index)
    batch, row = divmod(int(index), self._local)
    return self._parent[batch * self._global + self._offset + row]

  def __str__(self) -> str:
    return f"ProcessRows(offset={self._offset}, local={self._local}, global={self._global})"


def train_dataset(
  source,
  *,
  batch_size: int,
  seed: int,
  augment: bool | str = "flip_rotate",
  transforms: Sequence[grain.transforms.Map] = (),
  num_workers: int = 0,
  prefetch_buffer: int = 2,
  process_index: int = 0,
  process_count: int = 1,
) -> grain.IterDataset:
  """Endless training batches: a fresh seeded shuffle every epoch, whole batches only.

  `batch_size` is the global batch; with several processes each yields its own
  `batch_size // process_count` rows of it (`ProcessRows`: the shuffle, the augmentation's
  random draws and so the global batches do not depend on the number of processes).
  Its iterator's state (`grain.checkpoint.CheckpointSave`) pins the position in the stream,
  so a resumed run sees exactly the batches an uninterrupted one would. `transforms` (record
  transforms, e.g. `RemovePacking`, `MaskFromThreshold`; random ones, e.g. `LightJitter`,
  draw from the dataset's seed) run before the augmentation.
  """
  ds = grain.MapDataset.source(source).seed(seed).shuffle().repeat(None)
  for t in transforms:
    ds = ds.random_map(t) if isinstance(t, grain.transforms.RandomMap) else ds.map(t)
  random = augmentation(augment)
  if random is not None:
    ds = ds.random_map(random)
  if process_count > 1:
    ds = ProcessRows(ds, batch_size, process_index, process_count)
  ds = ds.batch(batch_size // process_count, drop_remainder=True)
  it = ds.to_iter_dataset(grain.ReadOptions(num_threads=2, prefetch_buffer_size=prefetch_buffer))
  if num_workers > 0:
    options = grain.MultiprocessingOptions(num_workers=num_workers)
    it = it.mp_prefetch(options, worker_init_fn=_ignore_sigint)
  return it


def _ignore_sigint(worker_index: int, worker_count: int) -> None:
  """In each grain worker, once started: see `interrupts.ignore_sigint` (the commands' workers
  ignore Ctrl-C from their first import of bugnist_jax already)."""
  interrupts.ignore_sigint()


def eval_batches(
  source,
  *,
  batch_size: int,
  transforms: Sequence[grain.transforms.Map] = (),
  process_index: int = 0,
  process_count: int = 1,
) -> Iterator[dict[str, np.ndarray]]:
  """Every item once, in order, in global batches of exactly `batch_size`, of which this
  process reads rows [p * b, (p + 1) * b), b = batch_size // process_count.

  Rows past the last item repeat an item and carry `valid` [b] False, so evaluation compiles
  once, counts every item exactly once, and every process runs the same number of batches.
  """
  ds = grain.MapDataset.source(source)
  for t in transforms:
    ds = ds.map(t)
  n, local = len(source), batch_size // process_count
  for start in range(0, n, batch_size):
    first = start + process_index * local
    rows = range(first, min(first + local, n))
    records = [ds[i] for i in rows] or [ds[n - 1]]  # all padding: any item will do
    valid = np.zeros(local, bool)
    valid[: len(rows)] = True
    records += [records[-1]] * (local - len(records))
    batch = {k: np.stack([r[k] for r in records]) for k in records[0]}
    batch["valid"] = valid
    yield batch
