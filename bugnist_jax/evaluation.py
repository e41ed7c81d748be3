"""Evaluate a trained run: classification metrics (numpy) and the report files.

The library behind `python -m bugnist_jax.evaluate`.
"""

import csv
import json
import pathlib

import numpy as np
from flax import nnx

from bugnist_jax import viz
from bugnist_jax.data import datasets
from bugnist_jax.runs import Run
from bugnist_jax.training import sharding
from bugnist_jax.training.loop import evaluate
from bugnist_jax.training.steps import make_eval_step


def per_class_report(cm: np.ndarray, class_names) -> dict:
  """Accuracy, and precision / recall / support per class, from a confusion matrix."""
  tp = np.diag(cm).astype(float)
  predicted, actual = cm.sum(0), cm.sum(1)
  precision = np.divide(tp, predicted, out=np.full_like(tp, np.nan), where=predicted > 0)
  recall = np.divide(tp, actual, out=np.full_like(tp, np.nan), where=actual > 0)
  return {
    "accuracy": float(tp.sum() / max(cm.sum(), 1)),
    "per_class": {
      name: {"precision": float(p), "recall": float(r), "support": int(n)}
      for name, p, r, n in zip(class_names, precision, recall, actual, strict=True)
    },
  }


def write_report(out_dir: pathlib.Path, split: str, cm: np.ndarray, class_names) -> dict:
  """Writes confusion_<split>.csv (counts) and metrics_<split>.json; returns the report."""
  out_dir.mkdir(parents=True, exist_ok=True)
  with open(out_dir / f"confusion_{split}.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["true\\predicted", *class_names])
    for name, row in zip(class_names, cm, strict=True):
      w.writerow([name, *row.tolist()])
  report = {"split": split, **per_class_report(cm, class_names), "confusion": cm.tolist()}
  (out_dir / f"metrics_{split}.json").write_text(json.dumps(report, indent=2))
  return report


def evaluate_run(workdir, splits=("test",), step=None, data_root=None) -> dict[str, dict]:
  """Evaluates the run in `workdir` on `splits`; returns {split: report}."""
  run = Run.open(workdir, step, data_root)
  config, info, step, workdir = run.config, run.info, run.step, run.workdir
  sources = {name: run.split(name, "--splits") for name in splits}
  mesh = sharding.data_mesh()
  graphdef, state = nnx.split((run.model, None))
  eval_step = make_eval_step(graphdef, run.normalization)
  state = sharding.replicate(state, mesh)
  out_dir = workdir / "eval"
  reports = {}
  for split in splits:
    res = evaluate(
      eval_step,
      state,
      sources[split],
      mesh,
      config.eval.batch_size,
      datasets.record_transforms(config.data),
    )
    cm = res["confusion"]
    report = write_report(out_dir, split, cm, info.class_names)
    viz.plot_confusion_matrix(
      cm,
      info.class_names,
      out_dir / f"confusion_{split}.png",
      title=f"{split}: accuracy {report['accuracy']:.1%} (step {step}), % per true class",
    )
    reports[split] = report
    print(f"{split}: accuracy {report['accuracy']:.4f} on {cm.sum()} items -> {out_dir}")
  return reports
