"""Readers for the digit datasets users may have on disk: MNIST / FashionMNIST IDX files and
SVHN's `.mat` files. Nothing is downloaded. A wrong, truncated or corrupt file is a one-line
UserError naming it.

Layouts (`config.data.root`):
- MNIST, FashionMNIST: `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
  `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each optionally `.gz`, in the folder or
  in its `raw/` (torchvision's layout);
- SVHN: `train_32x32.mat` and `test_32x32.mat` (X uint8 [32, 32, 3, N], y [N, 1] with 10 for
  the digit 0).

Each loader returns (images uint8 [N, H, W, C], labels int32 [N], test indices): the official
training and test sets stacked, the test items last, so studies can keep the official test set.
"""

import gzip
import pathlib
import zlib

import numpy as np

from bugnist_jax.errors import UserError

IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
FASHION_CLASSES = (
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
)


def read_idx(path: str | pathlib.Path) -> np.ndarray:
  """The array stored in an IDX file (`.gz` read transparently): magic 0 0 <type> <ndim>, then
  ndim big-endian uint32 sizes, then the data. UserError naming the file if it is not one."""
  path = pathlib.Path(path)
  try:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
  except (OSError, EOFError, zlib.error) as e:
    raise UserError(f"{path}: cannot read ({e})") from None
  if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES or raw[3] == 0:
    raise UserError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
  ndim, dtype = raw[3], np.dtype(IDX_TYPES[raw[2]])
  header = 4 + 4 * ndim
  if len(raw) < header:
    raise UserError(f"{path}: truncated IDX header ({len(raw)} bytes)")
  shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", ndim, 4))
  expected = header + int(np.prod(shape)) * dtype.itemsize
  if len(raw) != expected:
    what = "truncated" if len(raw) < expected else "too long"
    raise UserError(
      f"{path}: {what} IDX file: shape {shape} needs {expected} bytes, it has {len(raw)}"
    )
  return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find(root: pathlib.Path, name: str) -> pathlib.Path:
  for folder in (root, root / "raw"):
    for candidate in (folder / name, folder / f"{name}.gz"):
      if candidate.is_file():
        return candidate
  raise UserError(f"root: no {name}[.gz] in {root} or {root / 'raw'}")


def _idx_pair(root: pathlib.Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
  images_path = _find(root, f"{prefix}-images-idx3-ubyte")
  labels_path = _find(root, f"{prefix}-labels-idx1-ubyte")
  images, labels = read_idx(images_path), read_idx(labels_path)
  if images.ndim != 3 or images.dtype != np.uint8:
    raise UserError(
      f"{images_path}: expected uint8 images [N, H, W], got {images.dtype} {images.shape}"
    )
  if labels.ndim != 1 or len(labels) != len(images):
    raise UserError(
      f"{labels_path}: expected {len(images)} labels (one per image of {images_path.name}), "
      f"got shape {labels.shape}"
    )
  if labels.size and (labels.min() < 0 or labels.max() > 9):
    raise UserError(f"{labels_path}: labels must be 0..9, got {labels.min()}..{labels.max()}")
  return images[..., None], labels.astype(np.int32)


def load_idx_dataset(root: str | pathlib.Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """MNIST or FashionMNIST from `root`: (images [70000, 28, 28, 1], labels, test indices)."""
  root = pathlib.Path(root)
  if not root.is_dir():
    raise UserError(f"root: {root} is not a folder")
  train, test = _idx_pair(root, "train"), _idx_pair(root, "t10k")
  return _stacked(train, test)


def _stacked(train, test) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  images = np.concatenate([train[0], test[0]])
  labels = np.concatenate([train[1], test[1]])
  return images, labels, np.arange(len(train[1]), len(labels), dtype=np.int64)


def read_svhn_mat(path: str | pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
  """One SVHN `.mat` file: (images uint8 [N, 32, 32, 3], labels int32 [N] with 10 -> 0)."""
  from scipy import io

  path = pathlib.Path(path)
  if not path.is_file():
    raise UserError(f"root: no {path.name} in {path.parent}")
  try:
    mat = io.loadmat(path)
  except NotImplementedError:  # MATLAB v7.3 (HDF5), which scipy does not read
    raise UserError(
      f"{path}: a MATLAB v7.3 file; save it as v7 or use the original SVHN file"
    ) from None
  except Exception as e:  # noqa: BLE001 - scipy raises many types for a corrupt file
    first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
    raise UserError(f"{path}: not a readable .mat file ({first})") from None
  if "X" not in mat or "y" not in mat:
    raise UserError(
      f"{path}: no X and y arrays (keys: {', '.join(k for k in mat if not k.startswith('__'))})"
    )
  x, y = np.asarray(mat["X"]), np.asarray(mat["y"]).reshape(-1)
  if x.ndim != 4 or x.shape[2] != 3 or x.dtype != np.uint8:
    raise UserError(f"{path}: X must be uint8 [32, 32, 3, N], got {x.dtype} {x.shape}")
  if len(y) != x.shape[3]:
    raise UserError(f"{path}: {x.shape[3]} images in X but {len(y)} labels in y")
  if y.size and (y.min() < 1 or y.max() > 10):
    raise UserError(
      f"{path}: labels in y must be 1..10 (10 is the digit 0), got {y.min()}..{y.max()}"
    )
  return np.ascontiguousarray(np.moveaxis(x, 3, 0)), (y % 10).astype(np.int32)


def load_svhn(root: str | pathlib.Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """SVHN (cropped digits) from `root`: (images [N, 32, 32, 3], labels, test indices)."""
  root = pathlib.Path(root)
  if not root.is_dir():
    raise UserError(f"root: {root} is not a folder")
  return _stacked(read_svhn_mat(root / "train_32x32.mat"), read_svhn_mat(root / "test_32x32.mat"))


__all__ = ["FASHION_CLASSES", "load_idx_dataset", "load_svhn", "read_idx", "read_svhn_mat"]
