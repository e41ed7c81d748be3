"""Evaluate a trained run: `python -m bugnist_jax.evaluate --workdir=DIR [--splits=test]`.

Writes, per split, to DIR/eval/: the confusion matrix in percent per true class (PNG), its
counts (CSV), and accuracy with per-class precision and recall (JSON).
"""

from absl import app, flags

from bugnist_jax.errors import parse_flags, run_main
from bugnist_jax.training.evaluation import evaluate_run

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir of a training run.")
_SPLITS = flags.DEFINE_list("splits", ["test"], "Splits to evaluate: train, validation, test.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: best by validation).")
_DATA_ROOT = flags.DEFINE_string("data_root", None, "Data folder, if it moved since training.")
flags.mark_flag_as_required("workdir")


@run_main
def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  evaluate_run(_WORKDIR.value, tuple(_SPLITS.value), _STEP.value, _DATA_ROOT.value)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
