"""Reader for real BugNIST single-bug volumes in the Kaggle layout.

    ROOT/train/<CODE>/*.tif      (or ROOT itself holding the <CODE>/ folders)

Each file is one uint8 volume in (Z, Y, X) order, Z the long tube axis (128x64x64 for the Kaggle
"Small" files, 64x32x32 for "Tiny"). `scan_bugnist` checks every file's header up front, so a bad
file stops the run before training with one line naming it; `BugNISTSource` reads lazily.
"""

import os
from pathlib import Path

import numpy as np
import tifffile
from absl import logging

from bugnist_jax.data.classes import CLASS_CODES
from bugnist_jax.data.sources import IndexedSource
from bugnist_jax.errors import UserError

# File name prefixes of the Kaggle files per class (SL has none there; ours write `sl_`).
FILE_PREFIXES: dict[str, str] = {
  "AC": "bcrick_",
  "BC": "sfaar_",
  "BF": "spy_",
  "BL": "boffel_",
  "BP": "guld_",
  "CF": "krol_",
  "GH": "gras_",
  "MA": "maddi_",
  "ML": "mel_",
  "PP": "fluepup_",
  "SL": "sl_",
  "WO": "bank_",
}

_TIFF_SUFFIXES = (".tif", ".tiff")
_FLOAT_DTYPES = (np.float16, np.float32, np.float64)


def _class_root(root: Path) -> Path:
  """The folder holding the class folders: ROOT/train, or ROOT itself."""
  if not root.exists():
    raise UserError(f"{root}: BugNIST root does not exist")
  if not root.is_dir():
    raise UserError(f"{root}: BugNIST root is not a folder")
  if (root / "train").is_dir():
    return root / "train"
  if any((root / c).is_dir() for c in CLASS_CODES):
    return root
  raise UserError(f"{root}: no train/ folder and no class folders ({', '.join(CLASS_CODES)}) in it")


def _check_header(path: Path, shape: tuple[int, ...]) -> None:
  """Checks shape, dtype and that the image data lies inside the file (truncation)."""
  try:
    with tifffile.TiffFile(path) as tf:
      series = tf.series[0]
      got, dtype = tuple(series.shape), np.dtype(series.dtype)
      if series.dataoffset is not None:  # contiguous data: one range to check
        end = series.dataoffset + series.nbytes
      else:
        end = max(
          (
            o + n
            for p in series.pages
            if p is not None
            for o, n in zip(p.dataoffsets, p.databytecounts, strict=True)
          ),
          default=0,
        )
  except UserError:
    raise
  except Exception as e:  # tifffile raises many types for unparseable files
    raise UserError(f"{path}: not a readable TIFF ({type(e).__name__}: {e})") from None
  squeezed = tuple(s for s in got if s != 1) if len(got) != len(shape) else got
  if squeezed != tuple(shape):
    raise UserError(f"{path}: shape {got}, expected {tuple(shape)}")
  if dtype != np.uint8 and dtype not in _FLOAT_DTYPES:
    raise UserError(f"{path}: dtype {dtype}, expected uint8 (or a finite float volume)")
  size = path.stat().st_size
  if end > size:
    raise UserError(f"{path}: truncated: image data ends at byte {end}, file has {size}")


def scan_bugnist(root: str | os.PathLike, shape: tuple[int, int, int]) -> list[tuple[str, int]]:
  """Lists and checks every volume under `root`.

  Returns [(path relative to `root` in POSIX form, label)], sorted by path. Hidden files are
  ignored silently, other non-TIFF files with one log line; bad TIFFs raise UserError.
  """
  root = Path(root)
  base = _class_root(root)
  items, ignored = [], []
  for entry in sorted(base.iterdir()):
    if entry.name.startswith("."):
      continue
    if not entry.is_dir():
      if entry.suffix.lower() in _TIFF_SUFFIXES:
        raise UserError(f"{entry}: TIFF outside a class folder (expected {base}/<CODE>/*.tif)")
      ignored.append(entry)
      continue
    if entry.name not in CLASS_CODES:
      raise UserError(
        f"{entry}: unknown class folder '{entry.name}' (valid: {', '.join(CLASS_CODES)})"
      )
    label = CLASS_CODES.index(entry.name)
    tiffs = []
    for f in sorted(entry.iterdir()):
      if f.name.startswith("."):
        continue
      if f.is_file() and f.suffix.lower() in _TIFF_SUFFIXES:
        tiffs.append(f)
      else:
        ignored.append(f)
    if not tiffs:
      raise UserError(f"{entry}: class folder holds no .tif files")
    for f in tiffs:
      _check_header(f, shape)
      items.append((f.relative_to(root).as_posix(), label))
  if not items:
    raise UserError(f"{base}: no class folders ({', '.join(CLASS_CODES)}) in it")
  if ignored:
    logging.warning("ignoring %d non-TIFF files under %s (e.g. %s)", len(ignored), base, ignored[0])
  missing = sorted(set(CLASS_CODES) - {CLASS_CODES[lab] for _, lab in items})
  if missing:
    logging.warning("%s: no folder for classes %s", base, ", ".join(missing))
  return sorted(items)


def _to_uint8(path: Path, vol: np.ndarray) -> np.ndarray:
  """uint8 as is; finite floats: [0, 1] scaled to [0, 255], otherwise clipped to it."""
  if vol.dtype == np.uint8:
    return vol
  if vol.dtype not in _FLOAT_DTYPES:
    raise UserError(f"{path}: dtype {vol.dtype}, expected uint8 (or a finite float volume)")
  if not np.all(np.isfinite(vol)):
    raise UserError(f"{path}: float volume has non-finite values (NaN or inf)")
  vol = vol.astype(np.float32)
  if vol.min() >= 0.0 and vol.max() <= 1.0:
    vol = vol * 255.0
  return np.clip(np.rint(vol), 0, 255).astype(np.uint8)


def read_volume(path: str | os.PathLike, shape: tuple[int, int, int]) -> np.ndarray:
  """Reads one volume as uint8 [Z, Y, X]; any problem is a UserError naming the file."""
  path = Path(path)
  try:
    vol = tifffile.imread(path)
  except Exception as e:
    raise UserError(f"{path}: cannot read TIFF ({type(e).__name__}: {e})") from None
  if vol.shape != tuple(shape):
    if vol.size == int(np.prod(shape)) and vol.squeeze().shape == tuple(shape):
      vol = vol.reshape(shape)
    else:
      raise UserError(f"{path}: shape {vol.shape}, expected {tuple(shape)}")
  return _to_uint8(path, vol)


class BugNISTSource(IndexedSource):
  """Grain RandomAccessDataSource over scanned BugNIST files; reads each file on access.

  Holds only paths (picklable, thread-safe). Records: dict(image=uint8 [Z, Y, X, 1],
  label=int32 []).
  """

  def __init__(
    self,
    root: str | os.PathLike,
    items: list[tuple[str, int]],
    shape: tuple[int, int, int],
  ):
    self.root = str(root)
    self.items = [(str(p), int(lab)) for p, lab in items]
    self.num_examples = len(self.items)
    self.shape = tuple(int(s) for s in shape)

  def record(self, i: int) -> dict[str, np.ndarray]:
    rel, label = self.items[i]
    vol = read_volume(Path(self.root) / rel, self.shape)
    return dict(image=vol[..., None], label=np.int32(label))

  def labels(self) -> np.ndarray:
    """int32 [N] labels, without reading files."""
    return np.array([lab for _, lab in self.items], np.int32)

  def __repr__(self) -> str:
    return f"BugNISTSource(root={self.root!r}, num_examples={len(self)}, shape={self.shape})"
