"""Optional box and mask annotations of image folders: records, per-item `annotated`, scaling
to the configured shape, and one-line errors for bad CSV rows and mis-shaped masks."""

import numpy as np
import pytest
import tifffile
from PIL import Image

from bugnist_jax import config_defaults
from bugnist_jax.data import datasets
from bugnist_jax.errors import UserError


def _folder(tmp_path):
  base = tmp_path / "images"
  for name in ("bonsai", "menorah"):
    (base / name).mkdir(parents=True)
    for i in range(3):
      Image.fromarray(np.full((20, 40, 3), 60 * i, np.uint8)).save(base / name / f"im{i}.png")
  return base


def _config(base, **annotations):
  c = config_defaults.base(model="cnn2d")
  c.data.source, c.data.root, c.data.shape, c.data.classes = "imagefolder", str(base), (10, 10), ()
  for key, value in annotations.items():
    c.data.annotations[key] = str(value)
  return c.data


def test_boxes_and_masks_become_records_and_unannotated_items_are_flagged(tmp_path):
  base = _folder(tmp_path)
  csv = tmp_path / "boxes.csv"
  csv.write_text("item,y0,x0,y1,x1\nbonsai/im1.png,2,4,12,24\n")
  masks = tmp_path / "masks" / "bonsai"
  masks.mkdir(parents=True)
  mask = np.zeros((20, 40), np.uint8)
  mask[0:10, 0:20] = 255
  Image.fromarray(mask).save(masks / "im1.png")
  data = datasets.build(_config(base, boxes_csv=csv, mask_root=tmp_path / "masks"), tmp_path)
  split = next(iter(data.splits.values())).source  # the full source under the splits
  by_item = {item: split[i] for i, item in enumerate(data.items)}
  r = by_item["bonsai/im1.png"]
  assert r["annotated"] == 1 and r["object_box"].tolist() == [1, 1, 6, 6]  # (20, 40) -> (10, 10)
  assert r["object_mask"].shape == (10, 10) and r["object_mask"][:5, :5].all()
  assert r["object_mask"].sum() == 25
  other = by_item["menorah/im0.png"]
  assert other["annotated"] == 0 and other["object_mask"].sum() == 0
  assert other["object_box"].tolist() == [0, 0, 0, 0]


@pytest.mark.parametrize(
  "rows,message",
  [
    ("item,y0,x0,y1,x1\nbonsai/nope.png,0,0,1,1\n", r"boxes.csv:2: unknown item 'bonsai/nope.png'"),
    ("item,y0,x0,y1,x1\nbonsai/im0.png,0,0,30,10\n", r"boxes.csv:2: box \[0, 0, 30, 10\]"),
    ("item,box\nbonsai/im0.png,1\n", "boxes.csv: header must be item,y0,x0,y1,x1"),
  ],
)
def test_bad_box_rows_are_named(tmp_path, rows, message):
  base = _folder(tmp_path)
  (tmp_path / "boxes.csv").write_text(rows)
  with pytest.raises(UserError, match=message):
    datasets.build(_config(base, boxes_csv=tmp_path / "boxes.csv"), tmp_path)


def test_a_mask_of_another_size_or_a_missing_folder_is_one_line(tmp_path):
  base = _folder(tmp_path)
  (tmp_path / "masks" / "menorah").mkdir(parents=True)
  Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "masks" / "menorah" / "im2.png")
  with pytest.raises(UserError, match=r"im2.png: mask is \(8, 8\) but its image is \(20, 40\)"):
    datasets.build(_config(base, mask_root=tmp_path / "masks"), tmp_path)
  with pytest.raises(UserError, match="mask folder not found"):
    datasets.build(_config(base, mask_root=tmp_path / "nowhere"), tmp_path)


def test_bugnist_volumes_take_a_mask_folder(tmp_path):
  root, masks = tmp_path / "bugnist" / "train", tmp_path / "masks" / "train"
  for code in ("AC", "BC"):
    (root / code).mkdir(parents=True)
    (masks / code).mkdir(parents=True)
    for i in range(4):
      tifffile.imwrite(root / code / f"v{i}.tif", np.full((8, 4, 4), 100 + i, np.uint8))
  mask = np.zeros((8, 4, 4), np.uint8)
  mask[2:4] = 1
  tifffile.imwrite(masks / "AC" / "v1.tif", mask)
  c = config_defaults.base()
  c.data.source, c.data.root, c.data.shape = "bugnist3d", str(tmp_path / "bugnist"), (8, 4, 4)
  c.data.annotations.mask_root = str(tmp_path / "masks")
  c.data.split_fractions = (0.5, 0.25, 0.25)
  data = datasets.build(c.data, tmp_path)
  full = next(iter(data.splits.values())).source
  records = {item: full[i] for i, item in enumerate(data.items)}
  annotated = [item for item, r in records.items() if r["annotated"]]
  assert len(annotated) == 1 and annotated[0].endswith("AC/v1.tif")
  np.testing.assert_array_equal(records[annotated[0]]["object_mask"], mask)
  tifffile.imwrite(masks / "BC" / "v0.tif", np.zeros((4, 4, 4), np.uint8))
  with pytest.raises(UserError, match=r"v0.tif: mask is \(4, 4, 4\) but its volume is"):
    datasets.build(c.data, tmp_path / "again")
