"""Evaluate a trained run: `python -m bugnist_jax.evaluate --workdir=DIR [--splits=test]`.

Writes, per split, to DIR/eval/: the confusion matrix in percent per true class (PNG), its
counts (CSV), and accuracy with per-class precision and recall (JSON).
"""

from absl import flags

from bugnist_jax import cli


def define_flags() -> None:
  cli.workdir_flag()
  flags.DEFINE_list("splits", ["test"], "Splits to evaluate: train, validation, test.")
  flags.DEFINE_integer("step", None, "Checkpoint step (default: best by validation).")
  flags.DEFINE_string("data_root", None, "Data folder, if it moved since training.")


def main(f) -> None:
  from bugnist_jax.evaluation import evaluate_run

  evaluate_run(f.workdir, tuple(f.splits), f.step, f.data_root)


def run() -> None:
  cli.run(main, define_flags, doc=__doc__)


if __name__ == "__main__":
  run()
