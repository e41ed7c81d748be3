"""Evaluate a trained run: `python -m bugnist_jax.evaluate --workdir=DIR [--splits=test]`.

Writes, per split, to DIR/eval/: the confusion matrix in percent per true class (PNG), its
counts (CSV), and accuracy with per-class precision and recall (JSON).
"""

import pathlib

from absl import app, flags
from flax import nnx

from bugnist_jax import viz
from bugnist_jax.data import datasets
from bugnist_jax.errors import UserError, run_main
from bugnist_jax.training import sharding
from bugnist_jax.training.evaluation import confusion_matrix, write_report
from bugnist_jax.training.experiment import load_trained_model
from bugnist_jax.training.loop import evaluate, packing_transform
from bugnist_jax.training.steps import make_eval_step

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir of a training run.")
_SPLITS = flags.DEFINE_list("splits", ["test"], "Splits to evaluate: train, validation, test.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: best by validation).")
_DATA_ROOT = flags.DEFINE_string("data_root", None, "Data folder, if it moved since training.")
flags.mark_flag_as_required("workdir")


def evaluate_run(workdir, splits=("test",), step=None, data_root=None) -> dict[str, dict]:
  """Evaluates the run in `workdir` on `splits`; returns {split: report}."""
  workdir = pathlib.Path(workdir)
  config, info, model, step = load_trained_model(workdir, step)
  if data_root:
    config.data.root = data_root
  data = datasets.build(config.data, workdir)
  unknown = [s for s in splits if s not in data.splits]
  if unknown:
    raise UserError(f"--splits: unknown {unknown}; valid: {', '.join(data.splits)}")
  mesh = sharding.data_mesh()
  graphdef, state = nnx.split((model, None))
  eval_step = make_eval_step(graphdef, info.normalization)
  state = sharding.replicate(state, mesh)
  out_dir = workdir / "eval"
  reports = {}
  for split in splits:
    res = evaluate(eval_step, state, data.splits[split], mesh, config.eval.batch_size,
                   packing_transform(config.data))  # fmt: skip
    cm = confusion_matrix(res["labels"], res["logits"].argmax(-1), len(info.class_names))
    report = write_report(out_dir, split, cm, info.class_names)
    viz.plot_confusion_matrix(
      cm, info.class_names, out_dir / f"confusion_{split}.png",
      title=f"{split}: accuracy {report['accuracy']:.1%} (step {step}), % per true class",
    )  # fmt: skip
    reports[split] = report
    print(f"{split}: accuracy {report['accuracy']:.4f} on {cm.sum()} items -> {out_dir}")
  return reports


@run_main
def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  evaluate_run(_WORKDIR.value, tuple(_SPLITS.value), _STEP.value, _DATA_ROOT.value)


if __name__ == "__main__":
  app.run(main)
