"""train_and_evaluate(config, workdir): the whole training run, resumable from checkpoints."""

import contextlib
import json
import pathlib
import time

import jax
import numpy as np
from absl import logging
from flax import nnx

from bugnist_jax.data import datasets, pipeline
from bugnist_jax.data.sources import SubsetSource
from bugnist_jax.errors import UserError
from bugnist_jax.log import say
from bugnist_jax.models import build_model
from bugnist_jax.training import checkpoint, losses, sharding
from bugnist_jax.training.metrics_log import MetricsLog
from bugnist_jax.training.optim import make_optimizer
from bugnist_jax.training.progress import Progress
from bugnist_jax.training.steps import make_eval_step, make_train_step


def evaluate(eval_step, state, source, mesh, batch_size: int, transforms=()) -> dict:
  """Loss, accuracy and per-item logits [N, K] and labels [N] over a whole source, after the
  record `transforms` (the run's, `datasets.record_transforms`)."""
  totals = {"loss_sum": 0.0, "correct": 0.0, "count": 0.0}
  logits, labels = [], []
  for batch in pipeline.eval_batches(source, batch_size=batch_size, transforms=transforms):
    valid = batch["valid"]
    out = eval_step(
      state, sharding.shard_batch({k: batch[k] for k in ("image", "label", "valid")}, mesh)
    )
    for k in totals:
      totals[k] += float(out[k])
    logits.append(np.asarray(out["logits"])[valid])
    labels.append(batch["label"][valid])
  n = max(totals["count"], 1.0)
  return {
    "loss": totals["loss_sum"] / n,
    "accuracy": totals["correct"] / n,
    "logits": np.concatenate(logits),
    "labels": np.concatenate(labels),
  }


def _save_config(config, workdir: pathlib.Path) -> None:
  path = workdir / "config.json"
  text = config.to_json_best_effort(indent=2)
  if path.exists() and json.loads(path.read_text()) != json.loads(text):
    logging.warning("%s: config differs from the run being resumed; using the new one", path)
  path.write_text(text)


def train_and_evaluate(config, workdir: str | pathlib.Path) -> dict:
  """Trains config.model on config.data, evaluating on the validation split every epoch.

  Resumes from the latest checkpoint in `workdir/checkpoints` if there is one. Returns the
  final metrics (also in `workdir/metrics.jsonl`, one JSON object per line).
  """
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  _save_config(config, workdir)
  data = datasets.build(config.data, workdir)
  info = datasets.data_info(config.data, data, workdir)
  mesh = sharding.data_mesh()
  cfg = config.train
  sharding.check_batch_size(cfg.batch_size, mesh, "config.train.batch_size")
  sharding.check_batch_size(config.eval.batch_size, mesh, "config.eval.batch_size")
  train_source = datasets.training_source(config.data, data.splits["train"], len(data.class_names))
  steps_per_epoch = len(train_source) // cfg.batch_size
  if steps_per_epoch == 0:
    raise UserError(
      f"config.train.batch_size: {cfg.batch_size} is larger than the training split "
      f"({len(train_source)} items)"
    )
  total_steps = cfg.num_epochs * steps_per_epoch
  checkpoint_every = max(1, int(cfg.checkpoint_every_epochs * steps_per_epoch))

  model = build_model(config, info.image_shape, len(info.class_names))
  optimizer = nnx.Optimizer(model, make_optimizer(cfg, steps_per_epoch), wrt=nnx.Param)
  graphdef, state = nnx.split((model, optimizer))
  del model, optimizer
  seen_by_model = datasets.record_transforms(config.data)
  train_iter = iter(
    pipeline.train_dataset(
      SubsetSource(
        train_source, np.arange(jax.process_index(), len(train_source), jax.process_count())
      ),
      batch_size=cfg.batch_size // jax.process_count(),
      seed=config.seed,
      augment=config.data.augment,
      transforms=datasets.training_transforms(config.data),
      num_workers=config.data.num_workers,
      prefetch_buffer=config.data.prefetch,
    )
  )
  log = MetricsLog(workdir / "metrics.jsonl")
  ckpt_dir = workdir / "checkpoints"
  # Closing the iterator stops grain's worker processes and frees their shared memory.
  with contextlib.closing(train_iter), checkpoint.manager(ckpt_dir, cfg.keep_checkpoints) as mngr:
    step = mngr.latest_step() or 0
    if step:
      state, _ = checkpoint.restore(mngr, step, state, train_iter)
      log.truncate(after_step=step)
      say(f"resumed from step {step} of {total_steps}")
    state = sharding.replicate(state, mesh)
    extra_loss = losses.get_extra_loss(cfg.extra_loss)
    train_step = make_train_step(graphdef, info.normalization, extra_loss, cfg.extra_loss_weight)
    eval_step = make_eval_step(graphdef, info.normalization)
    progress = Progress(total_steps, start=step, unit="step")
    sums, count, t_last = None, 0, time.perf_counter()
    last_good = mngr.latest_step()
    final = {}
    while step < total_steps:
      batch = sharding.shard_batch(next(train_iter), mesh)
      state, metrics = train_step(state, batch)
      step += 1
      sums = metrics if sums is None else jax.tree.map(lambda a, b: a + b, sums, metrics)
      count += 1
      at_checkpoint = step % checkpoint_every == 0 or step == total_steps
      if step % cfg.log_every_steps == 0 or at_checkpoint:
        means = {k: float(v) / count for k, v in jax.device_get(sums).items()}
        if not np.isfinite(means["loss"]):
          raise UserError(
            f"training diverged: loss is {means['loss']} by step {step}; stopped. The last good "
            f"checkpoint is step {last_good} in {mngr.directory} (try a lower "
            "config.train.learning_rate)"
          )
        now = time.perf_counter()
        means["examples_per_s"] = count * cfg.batch_size / (now - t_last)
        means["epoch"] = step / steps_per_epoch
        log.write(step, "train", means)
        progress.update(
          step, loss=means["loss"], acc=means["accuracy"], ex_s=means["examples_per_s"]
        )
        sums, count, t_last = None, 0, now
      if at_checkpoint:
        val = evaluate(
          eval_step, state, data.splits["validation"], mesh, config.eval.batch_size, seen_by_model
        )
        final = {
          "val_loss": val["loss"],
          "val_accuracy": val["accuracy"],
          "epoch": step / steps_per_epoch,
        }
        log.write(step, "validation", final)
        say(f"step {step}: validation accuracy {val['accuracy']:.4f} loss {val['loss']:.4f}")
        checkpoint.save(mngr, step, state, train_iter, {"step": step, **final}, metrics=final)
        last_good = step
        t_last = time.perf_counter()  # evaluation time is not training throughput
    mngr.wait_until_finished()
  (workdir / "train_summary.json").write_text(json.dumps({"step": step, **final}, indent=2))
  return final
