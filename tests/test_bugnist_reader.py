"""Tests for the real BugNIST reader on TIFFs in the Kaggle layout, and make_synthetic."""

import logging
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from bugnist_jax.data.bugnist import BugNISTSource, read_volume, scan_bugnist
from bugnist_jax.data.classes import CLASS_CODES
from bugnist_jax.data.kaggle_export import write_synthetic
from bugnist_jax.data.synthetic3d import generate_example
from bugnist_jax.errors import UserError

SHAPE = (32, 16, 16)


@pytest.fixture(scope="module")
def kaggle(tmp_path_factory) -> Path:
  """24 synthetic volumes written as OUT/train/<CODE>/*.tif by make_synthetic."""
  out = tmp_path_factory.mktemp("bugnist")
  write_synthetic(out, 24, SHAPE, seed=3, shortcut_strength=0.5, masks=True)
  return out


def _tree(tmp_path: Path, files: dict[str, np.ndarray | bytes]) -> Path:
  """Writes {relative path: volume or raw bytes} under tmp_path/train."""
  for rel, content in files.items():
    p = tmp_path / "train" / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
      p.write_bytes(content)
    else:
      tifffile.imwrite(p, content)
  return tmp_path


def _vol(dtype=np.uint8, shape=SHAPE) -> np.ndarray:
  return np.random.default_rng(0).integers(0, 255, shape).astype(dtype)


def test_make_synthetic_layout_and_scan(kaggle, caplog):
  files = sorted((kaggle / "train").rglob("*.tif"))
  assert len(files) == 24
  assert (kaggle / "train" / "AC" / "bcrick_00000.tif").is_file()
  assert (kaggle / "train" / "SL" / "sl_00010.tif").is_file()
  assert (kaggle / "masks" / "AC" / "bcrick_00000_mask.tif").is_file()  # ignored by the reader
  (kaggle / "train" / ".DS_Store").write_bytes(b"\x00\x01junk")
  (kaggle / "train" / "AC" / ".DS_Store").write_bytes(b"\x00\x01junk")
  bad = kaggle / "train" / "BC" / "sfaar_99999.tif"
  bad.write_bytes(b"this is not a tiff at all" * 10)
  with pytest.raises(UserError, match=r"BC/sfaar_99999\.tif: not a readable TIFF"):
    scan_bugnist(kaggle, SHAPE)
  bad.unlink()
  with caplog.at_level(logging.WARNING):
    items = scan_bugnist(kaggle, SHAPE)
  assert not any("non-TIFF" in r.getMessage() for r in caplog.records)  # hidden: silent
  assert len(items) == 24 and items == sorted(items)
  assert items[0] == ("train/AC/bcrick_00000.tif", 0)
  for rel, label in items:
    assert rel.split("/")[1] == CLASS_CODES[label]
  # ROOT may also be the folder holding the class folders.
  assert scan_bugnist(kaggle / "train", SHAPE)[0] == ("AC/bcrick_00000.tif", 0)


def test_source_reads_what_was_written(kaggle):
  items = scan_bugnist(kaggle, SHAPE)
  src = pickle.loads(pickle.dumps(BugNISTSource(kaggle, items, SHAPE)))
  assert len(src) == 24 and "num_examples=24" in repr(src)
  np.testing.assert_array_equal(src.labels(), [lab for _, lab in items])
  rec = src[1]  # train/AC/bcrick_00012.tif: synthetic index 12
  assert rec["image"].shape == (*SHAPE, 1) and rec["image"].dtype == np.uint8
  assert rec["label"].dtype == np.int32 and int(rec["label"]) == 0
  np.testing.assert_array_equal(rec["image"], generate_example(3, 12, SHAPE, 0.5)["image"])
  masks = tifffile.imread(kaggle / "masks" / "AC" / "bcrick_00012_mask.tif")
  ex = generate_example(3, 12, SHAPE, 0.5)
  np.testing.assert_array_equal(masks == 1, ex["object_mask"] == 1)
  np.testing.assert_array_equal(masks == 2, ex["shortcut_mask"] == 1)


def test_non_tiff_files_are_logged(tmp_path, caplog):
  root = _tree(tmp_path, {"AC/a.tif": _vol(), "AC/notes.txt": b"hello", "WO/b.tiff": _vol()})
  with caplog.at_level(logging.WARNING):
    items = scan_bugnist(root, SHAPE)
  assert [lab for _, lab in items] == [0, 11]
  assert any("ignoring 1 non-TIFF" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
  "files, match",
  [
    ({}, "no train/ folder and no class folders"),
    ({"XX/a.tif": _vol()}, r"XX: unknown class folder 'XX' \(valid: AC, BC"),
    ({"AC/a.tif": _vol(), "BC/notes.txt": b"x"}, r"BC: class folder holds no \.tif files"),
    ({"AC/a.tif": b"II*\x00garbage"}, r"AC/a\.tif: not a readable TIFF"),
    ({"AC/a.tif": _vol(shape=(16, 16, 16))}, r"AC/a\.tif: shape \(16, 16, 16\), expected"),
    ({"AC/a.tif": _vol(np.uint16)}, r"AC/a\.tif: dtype uint16, expected uint8"),
    ({"a.tif": _vol(), "AC/b.tif": _vol()}, r"a\.tif: TIFF outside a class folder"),
  ],
)
def test_bad_trees_raise_user_error(tmp_path, files, match):
  _tree(tmp_path, files)
  if not files:
    (tmp_path / "other").mkdir()
  with pytest.raises(UserError, match=match):
    scan_bugnist(tmp_path, SHAPE)


def test_missing_root(tmp_path):
  with pytest.raises(UserError, match="does not exist"):
    scan_bugnist(tmp_path / "nope", SHAPE)


def test_truncated_tiff(tmp_path):
  root = _tree(tmp_path, {"AC/a.tif": _vol()})
  p = root / "train" / "AC" / "a.tif"
  p.write_bytes(p.read_bytes()[:5000])  # the data ends at byte ~8450
  with pytest.raises(UserError, match=r"AC/a\.tif: truncated: image data ends at byte"):
    scan_bugnist(root, SHAPE)


def test_float_volumes_checked_at_load(tmp_path):
  good = np.linspace(0, 1, np.prod(SHAPE), dtype=np.float32).reshape(SHAPE)
  bad = good.copy()
  bad[3, 4, 5] = np.nan
  root = _tree(tmp_path, {"AC/good.tif": good, "BC/bad.tif": bad})
  items = scan_bugnist(root, SHAPE)  # headers are fine
  src = BugNISTSource(root, items, SHAPE)
  img = src[0]["image"]
  assert img.dtype == np.uint8 and img.min() == 0 and img.max() == 255
  with pytest.raises(UserError, match=r"BC/bad\.tif: float volume has non-finite values"):
    src[1]
  (root / "train" / "BC" / "bad.tif").unlink()
  with pytest.raises(UserError, match=r"bad\.tif: cannot read TIFF"):
    read_volume(root / "train" / "BC" / "bad.tif", SHAPE)


def test_cli_writes_layout_and_reports_bad_flags(tmp_path):
  run = [sys.executable, "-m", "bugnist_jax.make_synthetic", f"--out={tmp_path / 'o'}"]
  ok = subprocess.run(
    [*run, "--num_examples=12", "--shape=32,16,16", "--nomasks"],
    capture_output=True,
    text=True,
    cwd=Path(__file__).parents[1],
  )
  assert ok.returncode == 0, ok.stderr
  assert len(scan_bugnist(tmp_path / "o", SHAPE)) == 12
  assert not (tmp_path / "o" / "masks").exists()
  bad = subprocess.run(
    [*run, "--shape=32,16"], capture_output=True, text=True, cwd=Path(__file__).parents[1]
  )
  assert bad.returncode == 2
  assert bad.stderr.strip().splitlines()[-1].startswith("error: --shape: 32,16")
