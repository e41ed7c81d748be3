"""Optional location annotations for image folders and BugNIST volumes (`config.data.annotations`).

- `boxes_csv`: a CSV with a header `item,y0,x0,y1,x1`: `item` is the image's path as in
  `split.csv` (relative to the class root, e.g. `bonsai/image_0001.jpg`), the box in the
  original image's pixels, y1/x1 exclusive; at most one box per item.
- `mask_root`: a folder mirroring the class folders, one mask per annotated image with the
  same relative path and a `.png` suffix (e.g. `MASKS/bonsai/image_0001.png`), the image's
  size, nonzero on the object. For BugNIST volumes (`bugnist3d`): a `.tif` of the volume's
  shape (Z, Y, X) per annotated volume (boxes: the saliency loss takes a mask's bounding box).

Images without a box or mask are unannotated: their records carry zero placeholders and
`annotated` 0, so they train the classifier only. Everything is checked when the data are
built: a missing folder, a CSV row naming an unknown item, a box outside its image and a mask
whose size is not its image's are one-line errors naming the file (and row).
"""

import csv
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from bugnist_jax.data.sources import IndexedSource
from bugnist_jax.errors import UserError

BOX_COLUMNS = ("item", "y0", "x0", "y1", "x1")


def _size(path: Path) -> tuple[int, int]:
  """(H, W) from the file's header."""
  try:
    with Image.open(path) as im:
      return im.size[1], im.size[0]
  except OSError as e:
    raise UserError(f"{path}: not a readable image ({e})") from None


def read_boxes(
  path, items: list[str], image_root: Path, shape: tuple[int, int] | None = None
) -> dict[str, np.ndarray]:
  """{item: int32 [4] box} from the CSV at `path`, checked: in original pixels, or with
  `shape` (H, W) in the pixels of the image resized to it (each axis scaled: the image
  folder's resize ignores the aspect)."""
  path = Path(path)
  if not path.is_file():
    raise UserError(f"{path}: boxes CSV not found (config.data.annotations.boxes_csv)")
  known, boxes = set(items), {}
  with path.open(newline="") as f:
    reader = csv.DictReader(f)
    if tuple(reader.fieldnames or ()) != BOX_COLUMNS:
      raise UserError(f"{path}: header must be {','.join(BOX_COLUMNS)}, got {reader.fieldnames}")
    for row_number, row in enumerate(reader, start=2):
      where = f"{path}:{row_number}"
      if row["item"] not in known:
        raise UserError(f"{where}: unknown item {row['item']!r} (paths as in split.csv)")
      try:
        box = np.array([int(row[c]) for c in BOX_COLUMNS[1:]], np.int32)
      except (TypeError, ValueError):
        raise UserError(f"{where}: box values must be integers") from None
      h, w = _size(image_root / row["item"])
      y0, x0, y1, x1 = box.tolist()
      if not (0 <= y0 < y1 <= h and 0 <= x0 < x1 <= w):
        raise UserError(f"{where}: box {box.tolist()} is empty or outside the {h}x{w} image")
      if shape is not None:
        scale = np.array([shape[0] / h, shape[1] / w] * 2)
        box = np.round(box * scale).astype(np.int32)
      boxes[row["item"]] = box
  return boxes


def _volume_shape(path: Path) -> tuple[int, ...]:
  try:
    with tifffile.TiffFile(path) as tf:
      return tuple(s for s in tf.series[0].shape if s != 1)
  except Exception as e:  # tifffile raises many types for unparseable files
    raise UserError(f"{path}: not a readable TIFF ({type(e).__name__}: {e})") from None


def find_masks(mask_root, items: list[str], image_root: Path, shape=None) -> dict[str, str]:
  """{item: mask path} of the items that have a mask under `mask_root`, sizes checked: a
  `.png` of its image's size, or with `shape` (volumes) a `.tif` of that shape."""
  root = Path(mask_root)
  if not root.is_dir():
    raise UserError(f"{root}: mask folder not found (config.data.annotations.mask_root)")
  found = {}
  for item in items:
    mask = (root / item).with_suffix(".tif" if shape else ".png")
    if not mask.is_file():
      continue
    got = _volume_shape(mask) if shape else _size(mask)
    want = tuple(shape) if shape else _size(image_root / item)
    if got != want:
      raise UserError(f"{mask}: mask is {got} but its {'volume' if shape else 'image'} is {want}")
    found[item] = str(mask)
  return found


class AnnotatedImages(IndexedSource):
  """An image-folder source plus `object_box` / `object_mask` (at its `shape`) and `annotated`
  for each record; see the module docstring."""

  def __init__(self, source, items: list[str], *, boxes_csv=None, mask_root=None):
    self.source, self.items = source, list(items)
    self.num_examples = len(source)
    self.shape = tuple(source.shape)
    self.volumes = len(self.shape) == 3
    root = Path(source.root)
    if boxes_csv and self.volumes:
      raise UserError(
        "config.data.annotations.boxes_csv: volumes take masks (mask_root) only; the box "
        "loss uses each mask's bounding box"
      )
    # Boxes in the pixels of the resized image, scaled once here (the CSV check reads sizes).
    self.boxes = read_boxes(boxes_csv, self.items, root, self.shape) if boxes_csv else None
    shape = self.shape if self.volumes else None
    self.masks = find_masks(mask_root, self.items, root, shape) if mask_root else None

  def record(self, i: int) -> dict:
    record, item = dict(self.source[i]), self.items[i]
    h, w = self.shape[-2:]
    annotated = True
    if self.boxes is not None:
      box = self.boxes.get(item)
      annotated &= box is not None
      record["object_box"] = np.zeros(4, np.int32) if box is None else box
    if self.masks is not None:
      path = self.masks.get(item)
      annotated &= path is not None
      if path is None:
        record["object_mask"] = np.zeros(self.shape, np.uint8)
      elif self.volumes:
        mask = tifffile.imread(path).reshape(self.shape)
        record["object_mask"] = (mask > 0).astype(np.uint8)
      else:
        with Image.open(path) as im:
          im = im.convert("L").resize((w, h), Image.Resampling.NEAREST)
          record["object_mask"] = (np.asarray(im) > 0).astype(np.uint8)
    record["annotated"] = np.uint8(annotated)
    return record

  def labels(self) -> np.ndarray:
    return self.source.labels()

  def __repr__(self) -> str:
    return f"AnnotatedImages({self.source!r})"


def annotate(source, items: list[str], cfg) -> IndexedSource:
  """`source` with the annotations `cfg` (config.data.annotations) names, or itself."""
  if cfg is None or not (cfg.get("boxes_csv") or cfg.get("mask_root")):
    return source
  return AnnotatedImages(
    source, items, boxes_csv=cfg.get("boxes_csv"), mask_root=cfg.get("mask_root")
  )


__all__ = ["AnnotatedImages", "annotate", "find_masks", "read_boxes"]
