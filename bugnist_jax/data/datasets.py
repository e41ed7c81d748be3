"""From a data config to what a model sees: sources, the split, record transforms, DataInfo.

`build(cfg, workdir)` gives the train/validation/test sources (the split saved in the
workdir); `record_transforms(cfg)` the transforms every consumer applies to a record before
the model sees it (packing removal), `training_transforms(cfg)` those training adds (masks
from a threshold), `training_source(cfg, source, num_classes)` the training items of the
training regime (`REGIMES`: labels shuffled, noisy copies), and
`data_info(cfg, dataset, workdir)` the facts a run records in `data.json` (classes, shape,
normalisation).
"""

import dataclasses
import json
import pathlib
from collections.abc import Callable

import grain
import numpy as np

from bugnist_jax.data import (
  annotations,
  badfiles,
  bugnist,
  digit_files,
  digits,
  imagefolder,
  splits,
  synthetic2d,
  synthetic3d,
)
from bugnist_jax.data.classes import CLASS_CODES
from bugnist_jax.data.light import LightJitter
from bugnist_jax.data.pipeline import MaskFromThreshold, RemovePacking
from bugnist_jax.data.sources import (
  CachedSource,
  NoisyCopies,
  PartlyAnnotated,
  ShuffledLabels,
  SubsetSource,
)
from bugnist_jax.data.transforms import Normalization
from bugnist_jax.errors import UserError
from bugnist_jax.log import say


@dataclasses.dataclass(frozen=True)
class Dataset:
  """The three splits of one data source and what models need to know about it."""

  splits: dict[str, SubsetSource]  # 'train', 'validation', 'test'
  class_names: tuple[str, ...]
  image_shape: tuple[int, ...]  # [*spatial, C] of every record's image
  items: list[str]  # identifier of every item of the full source (file path or index)


@dataclasses.dataclass(frozen=True)
class Source:
  """A whole data source before splitting: the source itself, item names, class names, and
  the indices of its official test set if it has one (MNIST, SVHN)."""

  source: object
  items: list[str]
  class_names: tuple[str, ...]
  image_shape: tuple[int, ...]
  test: np.ndarray | None = None


def _synthetic3d(cfg, skipped: list | None = None) -> Source:
  src = synthetic3d.SyntheticBugSource(
    cfg.num_examples, tuple(cfg.shape), cfg.seed, cfg.shortcut_strength
  )
  return Source(src, [str(i) for i in range(len(src))], CLASS_CODES, (*cfg.shape, 1))


def _bugnist3d(cfg, skipped: list | None = None) -> Source:
  if not cfg.root:
    raise UserError("config.data.root: set it to your BugNIST_DATA folder")
  items = bugnist.scan_bugnist(cfg.root, tuple(cfg.shape), skipped)
  src = bugnist.BugNISTSource(cfg.root, items, tuple(cfg.shape))
  paths = [path for path, _ in items]
  src = annotations.annotate(src, paths, cfg.get("annotations"))
  return Source(src, paths, CLASS_CODES, (*cfg.shape, 1))


def _synthetic2d(cfg, skipped: list | None = None) -> Source:
  classes = tuple(cfg.get("classes", ())) or synthetic2d.CLASS_NAMES
  src = synthetic2d.Synthetic2DSource(
    cfg.num_examples, tuple(cfg.shape), cfg.seed, classes, cfg.get("shortcut_patch", 0.0)
  )
  return Source(src, [str(i) for i in range(len(src))], classes, (*cfg.shape, 3))


def _imagefolder(cfg, skipped: list | None = None) -> Source:
  if not cfg.root:
    raise UserError("config.data.root: set it to your 101_ObjectCategories folder")
  items, classes = imagefolder.scan_imagefolder(cfg.root, tuple(cfg.classes), skipped)
  src = imagefolder.ImageFolderSource(cfg.root, items, tuple(cfg.shape))
  paths = [path for path, _ in items]
  src = annotations.annotate(src, paths, cfg.get("annotations"))
  return Source(src, paths, classes, (*cfg.shape, 3))


def _digits(cfg, skipped: list | None = None) -> Source:
  images, labels = digits.load_sklearn_digits(tuple(cfg.shape), cfg.num_examples)
  src = digits.ArraySource(images, labels, "scikit-learn digits")
  return Source(src, [str(i) for i in range(len(src))], digits.DIGIT_CLASSES, (*cfg.shape, 1))


def _on_disk(load: Callable, what: str, classes: tuple[str, ...]) -> Callable[..., Source]:
  """A builder for a dataset with an official test set read from `cfg.root` by `load`."""

  def build(cfg, skipped: list | None = None) -> Source:
    # One file per split: a bad one stops the run (it cannot be left out), `skipped` unused.
    if not cfg.root:
      raise UserError(f"config.data.root: set it to the folder holding the {what} files")
    images, labels, test = load(cfg.root)
    images = digits.fit_to_shape(images, tuple(cfg.shape), what)
    src = digits.ArraySource(images, labels, what)
    items = [str(i) for i in range(len(src))]
    return Source(src, items, classes, (*cfg.shape, images.shape[-1]), test=test)

  return build


# Data sources by `config.data.source`; each builds a Source from the data config. Sources read
# from disk scan every file first; given a `skipped` list they leave bad files out and append
# (path, problem) to it, else they raise one `badfiles.BadFiles` naming them all.
SOURCES: dict[str, Callable[..., Source]] = {
  "synthetic3d": _synthetic3d,
  "bugnist3d": _bugnist3d,
  "synthetic2d": _synthetic2d,
  "imagefolder": _imagefolder,
  "digits": _digits,
  "mnist": _on_disk(digit_files.load_idx_dataset, "MNIST", digits.DIGIT_CLASSES),
  "fashion_mnist": _on_disk(
    digit_files.load_idx_dataset, "FashionMNIST", digit_files.FASHION_CLASSES
  ),
  "svhn": _on_disk(digit_files.load_svhn, "SVHN", digits.DIGIT_CLASSES),
}


def new_split(
  labels: np.ndarray, fractions, seed: int, test: np.ndarray | None = None
) -> dict[str, np.ndarray]:
  """A seeded stratified split of `labels`; with an official `test` set, that set is the test
  split and the rest is split into train and validation in the ratio of `fractions[:2]`."""
  if test is None:
    return splits.stratified_split(labels, tuple(fractions), seed)
  rest = np.setdiff1d(np.arange(len(labels)), test)
  f_train, f_val = (float(f) for f in tuple(fractions)[:2])
  if f_train + f_val <= 0:
    raise UserError(f"config.data.split_fractions: {tuple(fractions)} leaves nothing to train on")
  ratio = (f_train / (f_train + f_val), f_val / (f_train + f_val), 0.0)
  inner = splits.stratified_split(labels[rest], ratio, seed)
  return {"train": rest[inner["train"]], "validation": rest[inner["validation"]], "test": test}


def _split_from_csv(path, items: list[str], labels: np.ndarray) -> dict[str, np.ndarray]:
  csv_items, csv_labels, csv_split = splits.read_split_csv(path)
  position = {item: i for i, item in enumerate(items)}
  unknown = [item for item in csv_items if item not in position]
  if unknown:
    raise UserError(f"{path}: {len(unknown)} item(s) not in the data, e.g. {unknown[0]!r}")
  index = np.array([position[item] for item in csv_items], np.int64)
  wrong = np.flatnonzero(labels[index] != csv_labels)
  if wrong.size:
    i = int(wrong[0])
    raise UserError(
      f"{path}: item {csv_items[i]!r} has label {csv_labels[i]}, the data says {labels[index[i]]}"
    )
  return {name: index[idx] for name, idx in csv_split.items()}


def full_data(cfg, workdir: pathlib.Path | None = None, write: bool = False) -> Source:
  """The whole data of config.data `cfg` (`.source`, `.class_names`, `.image_shape`, `.items`),
  before any split. Bad files (every one a scan found) stop the run, or with
  `cfg.skip_bad_files` are left out; with `write`, their list goes to `workdir/bad_files.txt`
  or `workdir/skipped_files.txt`."""
  if cfg.source not in SOURCES:
    raise UserError(f"config.data.source: unknown {cfg.source!r}; valid: {', '.join(SOURCES)}")
  skipped = [] if cfg.get("skip_bad_files", False) else None
  try:
    source = SOURCES[cfg.source](cfg, skipped)
  except badfiles.BadFiles as e:
    path = pathlib.Path(workdir) / badfiles.BAD_FILES if write and workdir else None
    if path:
      badfiles.write_list(path, e.problems)
    raise UserError(e.message(listed_in=path)) from None
  except UserError as e:  # a source names its argument; the user knows it as a config field
    field = str(e).split(":", 1)[0]
    if field in cfg:
      raise UserError(f"config.data.{e}") from None
    raise
  if skipped:
    path = pathlib.Path(workdir) / badfiles.SKIPPED_FILES if write and workdir else None
    if path:
      badfiles.write_list(path, skipped)
    where = f" (listed in {path})" if path else ""
    say(f"config.data.skip_bad_files: left out {len(skipped)} bad files{where}")
  return source


def build(cfg, workdir: str | pathlib.Path, write: bool = True) -> Dataset:
  """Sources for config.data `cfg`; the split is written to `workdir/split.csv`.

  The split comes from `cfg.split_csv` if set, else from an earlier run's `split.csv` in the
  workdir (so a resumed run sees the same split), else a new seeded stratified split.
  `write=False` (processes other than 0 of a multi-host run) writes no file: every process
  computes the same split, and a file another process writes appears whole (`os.replace`).
  """
  workdir = pathlib.Path(workdir)
  full = full_data(cfg, workdir, write)
  if cfg.get("cache", False):
    full = dataclasses.replace(full, source=CachedSource(full.source))
  labels = np.asarray(full.source.labels())
  saved = pathlib.Path(workdir) / "split.csv"
  if cfg.split_csv:
    split = _split_from_csv(cfg.split_csv, full.items, labels)
  elif saved.exists():
    split = _split_from_csv(saved, full.items, labels)
  else:
    split = new_split(labels, cfg.split_fractions, cfg.seed, full.test)
  if write and (not saved.exists() or cfg.split_csv):
    splits.write_split_csv(saved, full.items, labels, split)
  for name in ("train", "validation", "test"):
    if len(split.get(name, ())) == 0:
      raise UserError(f"config.data: the {name} split is empty (too little data?)")
  return Dataset(
    splits={name: SubsetSource(full.source, idx) for name, idx in split.items()},
    class_names=tuple(full.class_names),
    image_shape=tuple(full.image_shape),
    items=full.items,
  )


def record_transforms(cfg) -> list[grain.transforms.Map]:
  """What every consumer applies to a record before the model sees it: cotton removal when
  `cfg.remove_packing` (threshold + largest connected component)."""
  if not cfg.remove_packing:
    return []
  return [RemovePacking(cfg.packing_threshold, cfg.get("packing_min_size", 0))]


def training_transforms(cfg) -> list[grain.transforms.Map]:
  """`record_transforms`, then what training adds: `object_mask` from the threshold when
  `cfg.mask_from_threshold` (right for the right reasons on data without masks), and a light
  change drawn per item when `cfg.light_augment` (`data.light.LightJitter`; the train step
  applies it to the model inputs). `.get` so configs saved before a field existed still load."""
  seen = record_transforms(cfg)
  extra = []
  if cfg.get("mask_from_threshold"):  # after RemovePacking (same threshold) it is one compare
    extra.append(MaskFromThreshold(cfg.packing_threshold, packing_removed=bool(cfg.remove_packing)))
  if cfg.get("light_augment"):
    extra.append(LightJitter.from_config(cfg))
  return [*seen, *extra]


def apply(transforms: list[grain.transforms.Map], record: dict) -> dict:
  """`record` after each of `transforms` in turn."""
  for t in transforms:
    record = t.map(record)
  return record


# config.data.regime: how the training items relate to the data (seed 004's three regimes).
REGIMES = ("standard", "shuffled_labels", "noisy_copies")


def regime(cfg) -> str:
  """The training regime of config.data `cfg`. `shuffle_labels=True` (configs written before
  `regime` existed, which `runs.load_config` merges onto regime='standard') means
  'shuffled_labels'; set together with another regime it is a UserError."""
  name = cfg.get("regime", "standard")
  if name not in REGIMES:
    raise UserError(f"config.data.regime: unknown {name!r}; valid: {', '.join(REGIMES)}")
  if cfg.get("shuffle_labels", False):
    if name not in ("standard", "shuffled_labels"):
      raise UserError(
        f"config.data.shuffle_labels: True means regime 'shuffled_labels', but "
        f"config.data.regime is {name!r}; set only one"
      )
    return "shuffled_labels"
  return name


def training_source(cfg, source, num_classes: int | None = None):
  """The training items of the regime (`regime(cfg)`): `source` itself ('standard'), with its
  labels permuted by `cfg.seed` ('shuffled_labels'), or followed by `cfg.noise_copies` noisy
  copies with random labels of `num_classes` classes ('noisy_copies', `sources.NoisyCopies`;
  default: the largest label + 1). Only `cfg.annotated_fraction` of the items keep their
  annotations (`PartlyAnnotated`, drawn on the items before the regime) when it is below 1."""
  name = regime(cfg)
  fraction = cfg.get("annotated_fraction", 1.0)
  if fraction < 1.0:
    try:
      source = PartlyAnnotated(source, fraction, cfg.seed)
    except ValueError as e:
      raise UserError(f"config.data.{e}") from None
  if name == "shuffled_labels":
    return ShuffledLabels(source, cfg.seed)
  if name == "noisy_copies":
    copies, std = int(cfg.get("noise_copies", 9)), float(cfg.get("noise_std", 0.1))
    if copies < 1 or std <= 0:
      raise UserError(
        f"config.data.noise_copies / noise_std: need >= 1 copies and std > 0, got {copies}, {std}"
      )
    classes = num_classes or int(np.max(source.labels())) + 1
    return NoisyCopies(source, copies, std, cfg.seed, classes)
  return source


@dataclasses.dataclass(frozen=True)
class DataInfo:
  """Facts about the data a run trained on, written to `workdir/data.json` at its start."""

  class_names: tuple[str, ...]
  image_shape: tuple[int, ...]  # [*spatial, C]
  normalization: Normalization

  def save(self, workdir: pathlib.Path) -> None:
    splits.write_atomically(workdir / "data.json", json.dumps(dataclasses.asdict(self), indent=2))

  @classmethod
  def load(cls, workdir: pathlib.Path) -> "DataInfo":
    path = workdir / "data.json"
    if not path.exists():
      raise UserError(f"{path}: missing; is {workdir} the workdir of a training run?")
    try:
      d = json.loads(path.read_text())
      norm = Normalization(**d["normalization"])
      return cls(tuple(d["class_names"]), tuple(d["image_shape"]), norm)
    except (ValueError, KeyError, TypeError) as e:
      raise UserError(f"{path}: not a data.json written by a training run ({e})") from None


def data_info(cfg, dataset: Dataset, workdir: pathlib.Path, write: bool = True) -> DataInfo:
  """The run's DataInfo: read back when resuming, else fitted on training items and saved
  (unless `write` is False: every process fits the same one)."""
  if (workdir / "data.json").exists():
    return DataInfo.load(workdir)
  train, seen = dataset.splits["train"], record_transforms(cfg)
  n = min(cfg.normalization_examples, len(train))
  images = [apply(seen, train[i])["image"] for i in range(n)]
  info = DataInfo(
    dataset.class_names,
    dataset.image_shape,
    Normalization.fit(images, cfg.get("normalization", "standardize")),
  )
  if write:
    info.save(workdir)
  return info
