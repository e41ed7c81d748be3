"""Readers check every file first and report every bad one in one message, with the full list
in the workdir; `config.data.skip_bad_files` trains on the rest. Random TIFFs and bytes are
always either read or reported (one line naming the file), never a traceback or a silent skip."""

import io
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import smoke_config
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from bugnist_jax.data import badfiles, datasets
from bugnist_jax.data.badfiles import BadFiles
from bugnist_jax.data.bugnist import read_volume, scan_bugnist
from bugnist_jax.data.imagefolder import scan_imagefolder
from bugnist_jax.data.kaggle_export import write_synthetic
from bugnist_jax.data.splits import read_split_csv
from bugnist_jax.errors import UserError
from bugnist_jax.training.loop import train_and_evaluate

SHAPE = (32, 16, 16)


@pytest.fixture(scope="module")
def kaggle(tmp_path_factory) -> Path:
  """48 synthetic volumes in the Kaggle layout, two of them broken: one truncated (tifffile
  logs an error for it), one of the wrong shape."""
  root = tmp_path_factory.mktemp("bugnist")
  write_synthetic(root, 48, SHAPE, seed=1, shortcut_strength=0.5, masks=False)
  truncated = sorted((root / "train" / "GH").glob("*.tif"))[0]
  truncated.write_bytes(truncated.read_bytes()[:-100])
  wrong = sorted((root / "train" / "ML").glob("*.tif"))[0]
  tifffile.imwrite(wrong, np.zeros((16, 16, 16), np.uint8))
  return root


def _bad(root: Path) -> list[str]:
  return [sorted((root / "train" / c).glob("*.tif"))[0].name for c in ("GH", "ML")]


def _config(root: Path, **overrides):
  return smoke_config(**{"data.source": "bugnist3d", "data.root": str(root), **overrides})


def test_training_reports_every_bad_file_at_once_in_one_line(kaggle, tmp_path, capfd, caplog):
  """In this process (`cli.run` prints a UserError as one line, exit 2: test_commands); what
  tifffile logs while reading must not reach the console before it."""
  workdir = tmp_path / "run"
  with pytest.raises(UserError) as e:
    train_and_evaluate(_config(kaggle), workdir)
  line = str(e.value)
  assert "\n" not in line
  assert "2 of 48 files are bad" in line and "skip_bad_files" in line
  for name in _bad(kaggle):
    assert name in line
  # tifffile only logs the truncation (the "E1201 ... invalid page offset" line): folded in
  assert "damaged TIFF (tifffile: " in line and "invalid page offset" in line
  assert "shape (16, 16, 16), expected (32, 16, 16)" in line
  assert not [r for r in caplog.records if r.name.startswith("tifffile")]
  assert "invalid page offset" not in capfd.readouterr().err
  listed = (workdir / badfiles.BAD_FILES).read_text().splitlines()
  assert str(workdir / badfiles.BAD_FILES) in line
  assert sorted(Path(ln.split("\t")[0]).name for ln in listed) == sorted(_bad(kaggle))
  assert not (workdir / "checkpoints").exists()


def test_skip_bad_files_trains_on_the_rest_and_lists_them(kaggle, tmp_path):
  """The split (what training reads) holds the good files; the skipped ones are listed."""
  data = datasets.build(_config(kaggle, **{"data.skip_bad_files": True}).data, tmp_path)
  assert sum(len(s) for s in data.splits.values()) == 46
  skipped = (tmp_path / badfiles.SKIPPED_FILES).read_text().splitlines()
  assert sorted(Path(ln.split("\t")[0]).name for ln in skipped) == sorted(_bad(kaggle))
  rows = (tmp_path / "split.csv").read_text().splitlines()
  assert len(rows) == 1 + 46 and not any(name in "".join(rows) for name in _bad(kaggle))


def test_the_message_shows_a_few_and_the_file_has_them_all(tmp_path):
  for i in range(badfiles.SHOWN + 3):
    path = tmp_path / "train" / "AC" / f"bcrick_{i:05d}.tif"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"II*\x00" + bytes(i))
  cfg = smoke_config(**{"data.source": "bugnist3d", "data.root": str(tmp_path)}).data
  with pytest.raises(UserError) as e:
    datasets.build(cfg, tmp_path / "run")
  message = str(e.value)
  assert f"{badfiles.SHOWN + 3} of {badfiles.SHOWN + 3} files are bad" in message
  assert message.count("not a readable TIFF") == badfiles.SHOWN and "; and 3 more" in message
  assert len((tmp_path / "run" / badfiles.BAD_FILES).read_text().splitlines()) == 8


def test_image_folders_report_every_bad_image(tmp_path):
  for name in ("bonsai", "menorah"):
    (tmp_path / name).mkdir()
    for i in range(3):
      Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(tmp_path / name / f"{i}.png")
  (tmp_path / "bonsai" / "1.png").write_bytes(b"\x89PNG broken")
  (tmp_path / "menorah" / "2.png").write_bytes(b"")
  with pytest.raises(BadFiles) as e:
    scan_imagefolder(tmp_path)
  assert [p.name for p, _ in e.value.problems] == ["1.png", "2.png"]
  skipped = []
  items, _ = scan_imagefolder(tmp_path, skipped=skipped)
  assert len(items) == 4 and len(skipped) == 2


# --- property-based: the TIFF reader and the split CSV reader -------------------------------

_FIXTURE = HealthCheck.function_scoped_fixture  # tmp_path is reused: each example rewrites it
_DTYPES = ("u1", "u2", "i1", "f2", "f4", "f8")


@st.composite
def _tiff_bytes(draw) -> bytes:
  """A TIFF of a random volume (dtype, byte order, shape near the expected one), possibly cut
  short or with bytes overwritten; or plain random bytes."""
  if draw(st.booleans()) and draw(st.booleans()):
    return draw(st.binary(max_size=3000))
  order = draw(st.sampled_from(("<", ">")))
  dtype = np.dtype(order + draw(st.sampled_from(_DTYPES)))
  shape = draw(st.sampled_from([SHAPE] * 4 + [(*SHAPE, 1), (1, *SHAPE), (16, 16, 16), (32, 16)]))
  values = np.random.default_rng(draw(st.integers(0, 2**16))).random(shape) * 2
  if dtype.kind == "f" and draw(st.booleans()):
    values.flat[0] = np.nan
  buffer = io.BytesIO()
  tifffile.imwrite(buffer, values.astype(dtype), byteorder=order)
  data = buffer.getvalue()
  cut = draw(st.integers(0, len(data)))
  if draw(st.booleans()):
    data = data[:cut]
  elif draw(st.booleans()) and data:
    data = data[:cut] + draw(st.binary(min_size=1, max_size=64)) + data[cut + 64 :]
  return data


def _one_line_naming(message: str, path: Path) -> None:
  assert "\n" not in message and path.name in message, message


@settings(max_examples=120, deadline=None, suppress_health_check=[_FIXTURE])
@given(data=_tiff_bytes())
def test_any_tiff_is_read_or_reported_naming_it(tmp_path, data):
  path = tmp_path / "train" / "AC" / "bcrick_00000.tif"
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(data)
  try:
    items = scan_bugnist(tmp_path, SHAPE)
  except BadFiles as e:
    assert [p for p, _ in e.problems] == [path]  # reported, with the file named
    _one_line_naming(str(e), path)
    event(f"reported: {e.problems[0][1].split(' ')[0]}")
    return
  assert items == [("train/AC/bcrick_00000.tif", 0)]  # accepted: never silently dropped
  try:
    volume = read_volume(path, SHAPE)
  except UserError as e:  # the header was fine, the values are not (NaN floats)
    _one_line_naming(str(e), path)
    assert "non-finite" in str(e)
    event("read: non-finite")
    return
  assert volume.shape == SHAPE and volume.dtype == np.uint8
  event("read")


_SPLITS = ("train", "validation", "test")
_CELL = st.one_of(
  st.sampled_from([*_SPLITS, "holdout", "", "3", "-1", "x", "1e3", " 2", "٣"]),
  st.text(max_size=6),
)


@st.composite
def _csv_bytes(draw) -> bytes:
  """A split CSV: the right header or not, rows of random cells and lengths; encoded or random
  bytes, possibly cut short."""
  if draw(st.booleans()) and draw(st.booleans()):
    return draw(st.binary(max_size=200))
  header = draw(st.sampled_from(["item,label,split"] * 3 + ["label,item,split", "item,split", ""]))
  good = st.tuples(
    st.text("abc/._", min_size=1, max_size=4), st.sampled_from("0123"), st.sampled_from(_SPLITS)
  ).map(list)
  rows = draw(st.lists(st.one_of(good, good, st.lists(_CELL, max_size=4)), max_size=6))
  text = header + "\n" + "\n".join(",".join(r) for r in rows)
  data = text.encode("utf-8")
  return data[: draw(st.integers(0, len(data)))] if draw(st.booleans()) else data


@settings(max_examples=300, deadline=None, suppress_health_check=[_FIXTURE])
@given(data=_csv_bytes())
def test_any_split_csv_is_read_or_reported_naming_it(tmp_path, data):
  path = tmp_path / "split.csv"
  path.write_bytes(data)
  try:
    items, labels, split = read_split_csv(path)
  except UserError as e:
    _one_line_naming(str(e), path)
    event("reported")
    return
  event(f"read {min(len(items), 2)} items")
  # read: every row is an item in exactly one split (none skipped), labels are integers
  assert len(items) == len(labels) == sum(len(v) for v in split.values())
  assert sorted(np.concatenate(list(split.values())).tolist()) == list(range(len(items)))
  assert labels.dtype == np.int32 and (labels >= 0).all()
