"""Synthetic BugNIST-like volumes written as TIFFs in the Kaggle layout (and their masks).

The library behind `python -m bugnist_jax.make_synthetic`.
"""

import time
from pathlib import Path

import tifffile
from absl import logging

from bugnist_jax.data.bugnist import FILE_PREFIXES
from bugnist_jax.data.classes import CLASS_CODES
from bugnist_jax.data.synthetic3d import generate_example
from bugnist_jax.errors import UserError


def parse_shape(values: list[str]) -> tuple[int, int, int]:
  """'64,32,32' (as an absl list) -> (64, 32, 32); UserError naming --shape otherwise."""
  try:
    shape = tuple(int(v) for v in values)
  except ValueError:
    raise UserError(f"--shape: {','.join(values)} is not three integers Z,Y,X") from None
  if len(shape) != 3 or min(shape) < 8:
    raise UserError(f"--shape: {','.join(values)} must be three integers Z,Y,X, each >= 8")
  return shape


def write_synthetic(
  out: str | Path, num_examples: int, shape, seed: int, shortcut_strength: float, masks: bool
) -> Path:
  """Generates and writes the volumes; returns OUT/train."""
  out = Path(out)
  if num_examples < 1:
    raise UserError(f"--num_examples: {num_examples} must be >= 1")
  train = out / "train"
  if train.exists() and any(train.iterdir()):
    raise UserError(f"--out: {train} already holds files; choose a new folder")
  for sub in ("train", "masks") if masks else ("train",):
    for code in CLASS_CODES:
      (out / sub / code).mkdir(parents=True, exist_ok=True)
  width = max(5, len(str(num_examples - 1)))
  start = last = time.monotonic()
  for i in range(num_examples):
    ex = generate_example(seed, i, shape, shortcut_strength)
    code = CLASS_CODES[int(ex["label"])]
    stem = f"{FILE_PREFIXES[code]}{i:0{width}d}"
    tifffile.imwrite(train / code / f"{stem}.tif", ex["image"][..., 0])
    if masks:
      labels = ex["object_mask"] + 2 * ex["shortcut_mask"]  # disjoint by construction
      tifffile.imwrite(out / "masks" / code / f"{stem}_mask.tif", labels)
    now = time.monotonic()
    if now - last > 5 or i + 1 == num_examples:
      last = now
      logging.info("wrote %d/%d volumes (%.1f s)", i + 1, num_examples, now - start)
  return train
