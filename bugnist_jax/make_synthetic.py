"""Writes synthetic BugNIST-like volumes as TIFFs in the Kaggle layout.

    python -m bugnist_jax.make_synthetic --out=/tmp/synth --num_examples=1200 \
      --shape=64,32,32 --seed=0 --shortcut_strength=0.5

Layout: OUT/train/<CODE>/<prefix><index>.tif (uint8 (Z, Y, X), the real files' prefixes, e.g.
bcrick_00012.tif for AC), readable by `bugnist_jax.data.bugnist`; and, unless --nomasks,
OUT/masks/<CODE>/<prefix><index>_mask.tif (uint8: 0 background, 1 bug, 2 cotton), a folder the
reader ignores. Example `index` is `synthetic3d.generate_example(seed, index, ...)`.
"""

from absl import app, flags

from bugnist_jax.data.kaggle_export import parse_shape, write_synthetic
from bugnist_jax.errors import UserError, run_main

_OUT = flags.DEFINE_string("out", None, "Output folder (must not hold a train/ folder yet).")
_NUM = flags.DEFINE_integer("num_examples", 1200, "Number of volumes (labels are index % 12).")
_SHAPE = flags.DEFINE_list("shape", ["64", "32", "32"], "Volume shape Z,Y,X.")
_SEED = flags.DEFINE_integer("seed", 0, "Generator seed.")
_SHORTCUT = flags.DEFINE_float("shortcut_strength", 0.5, "How much the cotton reveals the class.")
_MASKS = flags.DEFINE_bool("masks", True, "Also write OUT/masks/ (0 background, 1 bug, 2 cotton).")


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
