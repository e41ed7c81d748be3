"""Reader for image folders in the Caltech-101 layout: ROOT/<class>/*.jpg.

    ROOT = .../101_ObjectCategories    (or its parent holding 101_ObjectCategories/)

`config.data.classes` picks the class folders (names matched exactly; Caltech-101's are lower
case, e.g. 'bonsai', 'hawksbill', 'menorah', 'scorpion', 'sunflower'), in label order; empty
means every folder. Images are decoded with Pillow (installed as a dependency of matplotlib),
converted to RGB (grayscale images get three equal channels) and resized bilinearly to
`config.data.shape` (H, W), ignoring the aspect ratio as the study's Keras loader does.
`scan_imagefolder` checks every file's header up front and reports every bad file at once
(`badfiles.BadFiles`) before training; `ImageFolderSource` decodes lazily.
"""

import os
from pathlib import Path

import numpy as np
from absl import logging
from PIL import Image

from bugnist_jax.data.badfiles import check_files
from bugnist_jax.data.sources import IndexedSource
from bugnist_jax.errors import UserError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".ppm", ".pgm")
CALTECH_FOLDER = "101_ObjectCategories"


def class_root(root: str | os.PathLike) -> Path:
  """The folder holding the class folders: ROOT/101_ObjectCategories, or ROOT itself."""
  root = Path(root)
  if not root.exists():
    raise UserError(f"{root}: image folder root does not exist")
  if not root.is_dir():
    raise UserError(f"{root}: image folder root is not a folder")
  return root / CALTECH_FOLDER if (root / CALTECH_FOLDER).is_dir() else root


def image_problem(path: Path) -> str | None:
  """What is wrong with the image at `path` (Pillow cannot identify or verify it), or None."""
  try:
    with Image.open(path) as im:
      im.verify()  # header and structure, without decoding all pixels
  except Exception as e:  # noqa: BLE001 - Pillow's plugins raise many types on broken files
    return f"not a readable image ({type(e).__name__}: {e})"
  return None


def scan_imagefolder(
  root: str | os.PathLike, classes: tuple[str, ...] = (), skipped: list | None = None
) -> tuple[list[tuple[str, int]], tuple[str, ...]]:
  """Lists and checks the images of `classes` under `root`.

  Returns ([(path relative to the class root in POSIX form, label)], class names). Non-image
  files (.DS_Store, Thumbs.db, notes) are skipped, with one log line for all of them. A missing
  or empty class folder raises UserError; bad images are all checked first and raise one
  `BadFiles`, or with a `skipped` list are appended to it as (path, problem) and left out.
  """
  base = class_root(root)
  available = sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
  classes = tuple(classes) or tuple(available)
  if not classes:
    raise UserError(f"{base}: no class folders in it")
  missing = [c for c in classes if c not in available]
  if missing:
    raise UserError(
      f"{base}: no class folder {missing[0]!r} (config.data.classes); "
      f"available: {', '.join(available) or 'none'}"
    )
  images, ignored = [], []
  for name in classes:
    found = []
    for f in sorted((base / name).iterdir()):
      if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith("."):
        found.append(f)
      else:
        ignored.append(f)
    if not found:
      raise UserError(f"{base / name}: class folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
    images += found
  if ignored:
    logging.warning(
      "ignoring %d non-image files under %s (e.g. %s)", len(ignored), base, ignored[0]
    )
  good = check_files(base, images, image_problem, "image", skipped)
  return [(f.relative_to(base).as_posix(), classes.index(f.parent.name)) for f in good], classes


def read_image(path: str | os.PathLike, shape: tuple[int, int]) -> np.ndarray:
  """Decodes one image as uint8 [H, W, 3] resized to `shape`; problems name the file."""
  path = Path(path)
  try:
    with Image.open(path) as im:
      im = im.convert("RGB")  # grayscale, palette, CMYK -> 3 channels
      if im.size != (shape[1], shape[0]):
        im = im.resize((shape[1], shape[0]), Image.Resampling.BILINEAR)
      return np.asarray(im, np.uint8).copy()
  except Exception as e:  # noqa: BLE001 - as in image_problem
    raise UserError(f"{path}: cannot decode image ({type(e).__name__}: {e})") from None


class ImageFolderSource(IndexedSource):
  """Grain RandomAccessDataSource over scanned images; decodes each file on access.

  Holds only paths (picklable, thread-safe). Records: dict(image=uint8 [H, W, 3], label=int32).
  """

  def __init__(self, root: str | os.PathLike, items: list[tuple[str, int]], shape):
    self.root = str(class_root(root))
    self.items = [(str(p), int(lab)) for p, lab in items]
    self.num_examples = len(self.items)
    self.shape = tuple(int(s) for s in shape)
    if len(self.shape) != 2:
      raise UserError(f"shape: images need (H, W), got {self.shape}")

  def record(self, i: int) -> dict[str, np.ndarray]:
    rel, label = self.items[i]
    return dict(image=read_image(Path(self.root) / rel, self.shape), label=np.int32(label))

  def labels(self) -> np.ndarray:
    """int32 [N] labels, without reading files."""
    return np.array([lab for _, lab in self.items], np.int32)

  def __repr__(self) -> str:
    return f"ImageFolderSource(root={self.root!r}, num_examples={len(self)}, shape={self.shape})"
