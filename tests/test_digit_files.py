"""The digit sources: scikit-learn's digits, MNIST-style IDX files and SVHN .mat files written
here (including wrong, truncated and corrupt ones), and the official test split."""

import gzip
import struct

import numpy as np
import pytest
from scipy import io

from bugnist_jax.config_defaults import base
from bugnist_jax.data import datasets, digit_files
from bugnist_jax.data.digits import load_sklearn_digits
from bugnist_jax.errors import UserError


def _idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
  header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
  return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def _write_mnist(root, n_train=12, n_test=6, gz=False):
  rng = np.random.default_rng(0)
  for prefix, n in (("train", n_train), ("t10k", n_test)):
    images = rng.integers(0, 256, (n, 28, 28), np.uint8)
    labels = (np.arange(n) % 3).astype(np.uint8)
    for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
      data = _idx_bytes(array)
      name = f"{prefix}-{kind}-ubyte"
      if gz:
        (root / f"{name}.gz").write_bytes(gzip.compress(data))
      else:
        (root / name).write_bytes(data)
  return root


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trips(tmp_path, gz):
  array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
  path = tmp_path / ("a.gz" if gz else "a")
  data = _idx_bytes(array)
  path.write_bytes(gzip.compress(data) if gz else data)
  np.testing.assert_array_equal(digit_files.read_idx(path), array)
  ints = np.array([[1, -2], [300, 4]], np.int32)
  (tmp_path / "i").write_bytes(_idx_bytes(ints, 0x0C))
  np.testing.assert_array_equal(digit_files.read_idx(tmp_path / "i"), ints)


@pytest.mark.parametrize(
  "data,message",
  [
    (b"", "not an IDX file"),
    (b"\x00\x00\x08", "not an IDX file"),
    (b"PK\x03\x04rest", "not an IDX file .bad magic number 504b0304"),
    (bytes([0, 0, 8, 3, 0, 0]), "truncated IDX header"),
    (_idx_bytes(np.zeros((4, 5, 5), np.uint8))[:-7], r"truncated IDX file: shape \(4, 5, 5\)"),
    (_idx_bytes(np.zeros((4,), np.uint8)) + b"x", "too long IDX file"),
  ],
)
def test_a_wrong_or_truncated_idx_file_is_one_line_naming_it(tmp_path, data, message):
  path = tmp_path / "train-images-idx3-ubyte"
  path.write_bytes(data)
  with pytest.raises(UserError, match=message) as info:
    digit_files.read_idx(path)
  assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_a_corrupt_gz_is_named(tmp_path):
  path = tmp_path / "t10k-labels-idx1-ubyte.gz"
  path.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + b"\x00" * 20)[:-6])
  with pytest.raises(UserError, match=f"{path}: cannot read"):
    digit_files.read_idx(path)


def test_mnist_source_keeps_the_official_test_set(tmp_path):
  _write_mnist(tmp_path, gz=True)
  cfg = base("lenet5").data
  cfg.source, cfg.root, cfg.shape = "mnist", str(tmp_path), (32, 32)
  data = datasets.build(cfg, tmp_path / "run")
  assert data.image_shape == (32, 32, 1) and data.class_names[:3] == ("0", "1", "2")
  np.testing.assert_array_equal(data.splits["test"].indices, np.arange(12, 18))
  assert len(data.splits["train"]) + len(data.splits["validation"]) == 12
  record = data.splits["test"][0]
  assert record["image"].shape == (32, 32, 1)
  assert not record["image"][:2].any() and not record["image"][:, -2:].any()  # padded by 2
  raw = digit_files.read_idx(tmp_path / "t10k-images-idx3-ubyte.gz")
  np.testing.assert_array_equal(record["image"][2:30, 2:30, 0], raw[0])


def test_mnist_errors_name_the_field_or_the_file(tmp_path):
  cfg = base("lenet5").data
  cfg.source = "fashion_mnist"
  with pytest.raises(UserError, match="config.data.root: set it"):
    datasets.build(cfg, tmp_path / "run")
  cfg.root = str(tmp_path)
  with pytest.raises(UserError, match="config.data.root: no train-images-idx3-ubyte"):
    datasets.build(cfg, tmp_path / "run")
  _write_mnist(tmp_path)
  (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx_bytes(np.zeros(5, np.uint8)))
  with pytest.raises(UserError, match="t10k-labels-idx1-ubyte: expected 6 labels"):
    datasets.build(cfg, tmp_path / "run")
  _write_mnist(tmp_path)
  cfg.shape = (24, 24)
  with pytest.raises(UserError, match=r"config.data.shape: \(24, 24\) is smaller than the 28x28"):
    datasets.build(cfg, tmp_path / "run")


def _write_svhn(path, n=5, **overrides):
  rng = np.random.default_rng(0)
  mat = {
    "X": rng.integers(0, 256, (32, 32, 3, n), np.uint8),
    "y": (np.arange(n) % 10 + 1).reshape(-1, 1).astype(np.uint8),
  }
  io.savemat(path, mat | overrides)
  return mat


def test_svhn_mat_files_read_with_ten_as_zero(tmp_path):
  mat = _write_svhn(tmp_path / "train_32x32.mat", n=12)
  _write_svhn(tmp_path / "test_32x32.mat", n=4)
  images, labels, test = digit_files.load_svhn(tmp_path)
  assert images.shape == (16, 32, 32, 3) and labels[9] == 0 and labels[0] == 1
  np.testing.assert_array_equal(images[2], mat["X"][..., 2])
  np.testing.assert_array_equal(test, np.arange(12, 16))


@pytest.mark.parametrize(
  "write,message",
  [
    (lambda p: p.write_bytes(b"MATLAB 5.0 MAT-file, garbage" + b"\x00" * 10), "not a readable"),
    (lambda p: p.write_bytes(b"\x00\x01"), "not a readable .mat file"),
    (lambda p: io.savemat(p, {"images": np.zeros(3)}), "no X and y arrays .keys: images"),
    (lambda p: _write_svhn(p, y=np.ones((4, 1))), "5 images in X but 4 labels"),
    (lambda p: _write_svhn(p, y=np.zeros((5, 1))), r"labels in y must be 1..10"),
    (
      lambda p: _write_svhn(p, X=np.zeros((32, 32, 5), np.uint8)),
      r"X must be uint8 \[32, 32, 3, N\]",
    ),
  ],
)
def test_a_wrong_or_corrupt_mat_file_is_one_line_naming_it(tmp_path, write, message):
  path = tmp_path / "train_32x32.mat"
  write(path)
  with pytest.raises(UserError, match=message) as info:
    digit_files.read_svhn_mat(path)
  assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_svhn_without_files_names_the_root(tmp_path):
  cfg = base("lenet5").data
  cfg.source, cfg.root = "svhn", str(tmp_path)
  with pytest.raises(UserError, match="config.data.root: no train_32x32.mat"):
    datasets.build(cfg, tmp_path / "run")


def test_sklearn_digits_are_real_balanced_and_upsampled(tmp_path):
  images, labels = load_sklearn_digits((32, 32))
  assert images.shape == (1797, 32, 32, 1) and images.dtype == np.uint8
  assert np.bincount(labels).min() >= 174 and images.max() == 255
  assert not images[:, :2].any() and images[:, 8:24, 8:24].mean() > 40  # the border is blank
  cfg = base("lenet5").data
  cfg.source, cfg.shape, cfg.num_examples = "digits", (32, 32), 300
  data = datasets.build(cfg, tmp_path)
  assert sum(len(s) for s in data.splits.values()) == 300
  assert data.class_names == tuple("0123456789")
