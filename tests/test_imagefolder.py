"""The Caltech-101-style image-folder reader: decoding, class subset, bad input, split file."""

import numpy as np
import pytest
from PIL import Image

from bugnist_jax import config_defaults
from bugnist_jax.data import datasets
from bugnist_jax.data.imagefolder import ImageFolderSource, scan_imagefolder
from bugnist_jax.errors import UserError


def _folder(tmp_path, per_class=4):
  base = tmp_path / "101_ObjectCategories"
  rng = np.random.default_rng(0)
  for c, name in enumerate(("bonsai", "menorah", "other")):
    d = base / name
    d.mkdir(parents=True)
    for i in range(per_class):
      color = rng.integers(0, 255, (30 + i, 40, 3), dtype=np.uint8)
      color[..., c % 3] = 250  # a class colour, so the decoded content is checkable
      if i == 0:  # a grayscale JPEG
        Image.fromarray(color[..., 0]).save(d / f"image_{i:04d}.jpg")
      else:
        Image.fromarray(color).save(d / f"image_{i:04d}.png")
  (base / "bonsai" / ".DS_Store").write_bytes(b"\0junk")
  (base / "menorah" / "notes.txt").write_text("not an image")
  return base


def test_scan_and_read(tmp_path, caplog):
  base = _folder(tmp_path)
  with caplog.at_level("WARNING"):
    items, classes = scan_imagefolder(tmp_path, ("menorah", "bonsai"))  # parent of the folder
  logged = [r.getMessage() for r in caplog.records if "non-image" in r.getMessage()]
  assert len(logged) == 1 and "ignoring 2 non-image files" in logged[0]  # .DS_Store, notes.txt
  assert classes == ("menorah", "bonsai")
  assert [lab for _, lab in items] == [0] * 4 + [1] * 4
  assert items[0][0] == "menorah/image_0000.jpg"
  src = ImageFolderSource(base, items, (24, 20))
  np.testing.assert_array_equal(src.labels(), [0] * 4 + [1] * 4)
  gray = src[0]["image"]
  assert gray.shape == (24, 20, 3) and gray.dtype == np.uint8
  np.testing.assert_array_equal(gray[..., 0], gray[..., 2])  # grayscale -> 3 equal channels
  colour = src[5]["image"]  # bonsai: red channel was 250 everywhere
  assert colour[..., 0].min() > 240 and colour[..., 1].std() > 10
  assert scan_imagefolder(base)[1] == ("bonsai", "menorah", "other")  # empty: every folder


def test_bad_input_names_the_file_or_folder(tmp_path):
  base = _folder(tmp_path)
  with pytest.raises(UserError, match="does not exist"):
    scan_imagefolder(tmp_path / "nowhere")
  with pytest.raises(UserError, match=r"'Bonsai'.*available: bonsai, menorah, other"):
    scan_imagefolder(base, ("Bonsai",))
  (base / "empty").mkdir()
  with pytest.raises(UserError, match="empty: class folder holds no images"):
    scan_imagefolder(base, ("empty",))
  (base / "other" / "image_0009.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
  with pytest.raises(UserError, match="image_0009.jpg: not a readable image"):
    scan_imagefolder(base, ("other",))


def test_truncated_image_fails_on_read(tmp_path):
  base = _folder(tmp_path)
  path = base / "bonsai" / "image_0001.png"
  data = path.read_bytes()
  items, _ = scan_imagefolder(base, ("bonsai",))
  path.write_bytes(data[: len(data) // 2])
  with pytest.raises(UserError, match="image_0001.png"):
    ImageFolderSource(base, items, (16, 16))[1]


def test_datasets_build_writes_a_stratified_split(tmp_path):
  _folder(tmp_path, per_class=6)
  cfg = config_defaults.base().data
  cfg.source, cfg.root, cfg.shape = "imagefolder", str(tmp_path), (16, 16)
  cfg.classes = ("bonsai", "menorah")
  data = datasets.build(cfg, tmp_path / "run")
  assert data.class_names == ("bonsai", "menorah") and data.image_shape == (16, 16, 3)
  assert sum(len(s) for s in data.splits.values()) == 12
  for split in data.splits.values():
    assert set(split.labels().tolist()) == {0, 1}
  text = (tmp_path / "run" / "split.csv").read_text()
  assert "bonsai/image_0000.jpg" in text
  cfg.root = None
  with pytest.raises(UserError, match="config.data.root"):
    datasets.build(cfg, tmp_path / "run2")
