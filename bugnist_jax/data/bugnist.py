"""Reader for real BugNIST single-bug volumes in the Kaggle layout.

    ROOT/train/<CODE>/*.tif      (or ROOT itself holding the <CODE>/ folders)

Each file is one uint8 volume in (Z, Y, X) order, Z the long tube axis (128x64x64 for the Kaggle
"Small" files, 64x32x32 for "Tiny"). `scan_bugnist` checks every file's header up front and
reports every bad file at once (`badfiles.BadFiles`) before training; `BugNISTSource` reads
lazily. tifffile's log messages are folded into these errors, not printed.
"""

import os
from pathlib import Path

import numpy as np
import tifffile
from absl import logging

from bugnist_jax.data.badfiles import captured, check_files
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


def _native(dtype) -> np.dtype:
  """`dtype` in this machine's byte order (a big-endian TIFF holds the same values)."""
  return np.dtype(dtype).newbyteorder("=")


def _data_end(series) -> int:
  """The byte where the series' image data ends (truncated files end before it)."""
  if series.dataoffset is not None:  # contiguous data: one range to check
    return series.dataoffset + series.nbytes
  return max(
    (
      o + n
      for p in series.pages
      if p is not None
      for o, n in zip(p.dataoffsets, p.databytecounts, strict=True)
    ),
    default=0,
  )


def header_problem(path: Path, shape: tuple[int, ...]) -> str | None:
  """What is wrong with the TIFF at `path` for volumes of `shape` (its shape, dtype, data
  past the end of the file, an error tifffile logged), or None; reads the header only."""
  with captured("tifffile") as logged:
    try:
      with tifffile.TiffFile(path) as tf:
        series = tf.series[0]
        got, dtype, end = tuple(series.shape), _native(series.dtype), _data_end(series)
    except Exception as e:  # noqa: BLE001 - tifffile raises many types for unparseable files
      return f"not a readable TIFF ({type(e).__name__}: {e})"
  squeezed = tuple(s for s in got if s != 1) if len(got) != len(shape) else got
  if squeezed != tuple(shape):
    return f"shape {got}, expected {tuple(shape)}"
  if dtype != np.uint8 and dtype not in _FLOAT_DTYPES:
    return f"dtype {dtype}, expected uint8 (or a finite float volume)"
  size = path.stat().st_size
  if end > size:
    return f"truncated: image data ends at byte {end}, file has {size}"
  if logged:  # tifffile read past a problem it only logged (a bad page offset, ...)
    return f"damaged TIFF (tifffile: {logged[0]})"
  return None


def scan_bugnist(
  root: str | os.PathLike, shape: tuple[int, int, int], skipped: list | None = None
) -> list[tuple[str, int]]:
  """Lists and checks every volume under `root`.

  Returns [(path relative to `root` in POSIX form, label)], sorted by path. Hidden files are
  ignored silently, other non-TIFF files with one log line. A layout error (an unknown or empty
  class folder) raises UserError; bad TIFFs are all checked first and raise one `BadFiles`, or
  with a `skipped` list are appended to it as (path, problem) and left out.
  """
  root = Path(root)
  base = _class_root(root)
  tiffs, ignored = [], []
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
    found = []
    for f in sorted(entry.iterdir()):
      if f.name.startswith("."):
        continue
      if f.is_file() and f.suffix.lower() in _TIFF_SUFFIXES:
        found.append(f)
      else:
        ignored.append(f)
    if not found:
      raise UserError(f"{entry}: class folder holds no .tif files")
    tiffs += found
  if not tiffs:
    raise UserError(f"{base}: no class folders ({', '.join(CLASS_CODES)}) in it")
  if ignored:
    logging.warning("ignoring %d non-TIFF files under %s (e.g. %s)", len(ignored), base, ignored[0])
  good = check_files(base, tiffs, lambda f: header_problem(f, shape), "file", skipped)
  items = _labelled(root, good)
  missing = sorted(set(CLASS_CODES) - {CLASS_CODES[lab] for _, lab in items})
  if missing:
    logging.warning("%s: no folder for classes %s", base, ", ".join(missing))
  return sorted(items)


def _labelled(root: Path, files: list[Path]) -> list[tuple[str, int]]:
  """[(path relative to `root`, label of its class folder)]."""
  return [(f.relative_to(root).as_posix(), CLASS_CODES.index(f.parent.name)) for f in files]


def _to_uint8(path: Path, vol: np.ndarray) -> np.ndarray:
  """uint8 as is; finite floats: [0, 1] scaled to [0, 255], otherwise clipped to it."""
  if vol.dtype == np.uint8:
    return vol
  if _native(vol.dtype) not in _FLOAT_DTYPES:
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
  with captured("tifffile") as logged:
    try:
      vol = tifffile.imread(path)
    except Exception as e:  # noqa: BLE001 - tifffile raises many types for unparseable files
      said = f"; tifffile: {logged[0]}" if logged else ""
      raise UserError(f"{path}: cannot read TIFF ({type(e).__name__}: {e}{said})") from None
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
