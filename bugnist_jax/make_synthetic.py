"""Writes synthetic BugNIST-like volumes as TIFFs in the Kaggle layout.

    python -m bugnist_jax.make_synthetic --out=/tmp/synth --num_examples=1200 \
      --shape=64,32,32 --seed=0 --shortcut_strength=0.5

Layout: OUT/train/<CODE>/<prefix><index>.tif (uint8 (Z, Y, X), the real files' prefixes, e.g.
bcrick_00012.tif for AC), readable by `bugnist_jax.data.bugnist`; and, unless --nomasks,
OUT/masks/<CODE>/<prefix><index>_mask.tif (uint8: 0 background, 1 bug, 2 cotton), a folder the
reader ignores. Example `index` is `synthetic3d.generate_example(seed, index, ...)`.
"""

import time
from pathlib import Path

import tifffile
from absl import app, flags, logging

from bugnist_jax.data.bugnist import FILE_PREFIXES
from bugnist_jax.data.classes import CLASS_CODES
from bugnist_jax.data.synthetic3d import generate_example
from bugnist_jax.errors import UserError, run_main

_OUT = flags.DEFINE_string("out", None, "Output folder (must not hold a train/ folder yet).")
_NUM = flags.DEFINE_integer("num_examples", 1200, "Number of volumes (labels are index % 12).")
_SHAPE = flags.DEFINE_list("shape", ["64", "32", "32"], "Volume shape Z,Y,X.")
_SEED = flags.DEFINE_integer("seed", 0, "Generator seed.")
_SHORTCUT = flags.DEFINE_float("shortcut_strength", 0.5, "How much the cotton reveals the class.")
_MASKS = flags.DEFINE_bool("masks", True, "Also write OUT/masks/ (0 background, 1 bug, 2 cotton).")


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
      labels = ex["mask"] + 2 * ex["cotton"]  # disjoint by construction
      tifffile.imwrite(out / "masks" / code / f"{stem}_mask.tif", labels)
    now = time.monotonic()
    if now - last > 5 or i + 1 == num_examples:
      last = now
      logging.info("wrote %d/%d volumes (%.1f s)", i + 1, num_examples, now - start)
  return train


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not _OUT.value:
    raise UserError("--out: required (the folder to write train/<CODE>/*.tif into)")
  train = write_synthetic(
    _OUT.value, _NUM.value, parse_shape(_SHAPE.value), _SEED.value, _SHORTCUT.value, _MASKS.value
  )
  print(f"wrote {_NUM.value} volumes under {train}")


if __name__ == "__main__":
  app.run(run_main(main))
