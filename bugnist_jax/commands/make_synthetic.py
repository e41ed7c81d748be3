"""Writes synthetic BugNIST-like volumes as TIFFs in the Kaggle layout.

    python -m bugnist_jax.make_synthetic --out=/tmp/synth --num_examples=1200 \
      --shape=64,32,32 --seed=0 --shortcut_strength=0.5

Layout: OUT/train/<CODE>/<prefix><index>.tif (uint8 (Z, Y, X), the real files' prefixes, e.g.
bcrick_00012.tif for AC), readable by `bugnist_jax.data.bugnist`; and, unless --nomasks,
OUT/masks/<CODE>/<prefix><index>_mask.tif (uint8: 0 background, 1 bug, 2 cotton), a folder the
reader ignores. Example `index` is `synthetic3d.generate_example(seed, index, ...)`.
"""

from absl import flags

from bugnist_jax import cli


def define_flags() -> None:
  flags.DEFINE_string("out", None, "Output folder (must not hold a train/ folder yet).")
  flags.mark_flag_as_required("out")
  flags.DEFINE_integer("num_examples", 1200, "Number of volumes (labels are index % 12).")
  flags.DEFINE_list("shape", ["64", "32", "32"], "Volume shape Z,Y,X.")
  flags.DEFINE_integer("seed", 0, "Generator seed.")
  flags.DEFINE_float("shortcut_strength", 0.5, "How much the cotton reveals the class (0..1).")
  flags.DEFINE_bool("masks", True, "Also write OUT/masks/ (0 background, 1 bug, 2 cotton).")


def main(f) -> None:
  from bugnist_jax.data.kaggle_export import parse_shape, write_synthetic

  train = write_synthetic(
    f.out, f.num_examples, parse_shape(f.shape), f.seed, f.shortcut_strength, f.masks
  )
  print(f"wrote {f.num_examples} volumes under {train}")


def run() -> None:
  cli.run(main, define_flags, doc=__doc__)


if __name__ == "__main__":
  run()
