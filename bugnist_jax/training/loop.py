"""train_and_evaluate(config, workdir): the whole training run, resumable from checkpoints.

Before any work the config is checked (`validation.check_config`, `check_model_fits`). The run
writes to the workdir `config.json`, `split.csv`, `data.json`, `metrics.jsonl`, TensorBoard
event files (`tensorboard/`), orbax `checkpoints/` and at the end `train_summary.json`. It
stops with one line (a `UserError`, exit 2) and keeps the last good checkpoint when the loss
stops being finite or grows past `config.train.divergence_factor` times the first logged
training loss (the validation loss too, before each checkpoint is saved); on
SIGINT or SIGTERM it saves a checkpoint of the current step first (`errors.Interrupted`). With
several processes (`jax.distributed`), each reads its rows of every global batch and process 0
writes the files.
"""

import contextlib
import dataclasses
import json
import math
import pathlib
import time

import jax
import numpy as np
from absl import logging
from flax import nnx

from bugnist_jax import validation
from bugnist_jax.data import datasets, pipeline
from bugnist_jax.errors import Interrupted, UserError
from bugnist_jax.interrupts import StopRequest
from bugnist_jax.log import say
from bugnist_jax.models import build_model
from bugnist_jax.progress import Progress
from bugnist_jax.training import adversarial, checkpoint, losses, sharding
from bugnist_jax.training.metrics_log import MetricsLog
from bugnist_jax.training.optim import learning_rate_schedule, make_optimizer
from bugnist_jax.training.steps import make_eval_step, make_gradient_step, make_train_step
from bugnist_jax.training.tensorboard import TensorBoard


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
  """Counts [K, K]: row = true class, column = predicted class."""
  cm = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(cm, (np.asarray(labels), np.asarray(preds)), 1)
  return cm


def evaluate(
  eval_step, state, source, mesh, batch_size: int, transforms=(), show: bool = True
) -> dict:
  """Loss, accuracy, per-item logits [N, K] and labels [N] and the confusion matrix [K, K] over
  a whole source, after the record `transforms` (the run's, `datasets.record_transforms`).
  With several processes each reads its rows of every batch; all get every result."""
  totals = {"loss_sum": 0.0, "correct": 0.0, "count": 0.0}
  logits, labels = [], []
  batches = pipeline.eval_batches(
    source,
    batch_size=batch_size,
    transforms=transforms,
    process_index=jax.process_index(),
    process_count=jax.process_count(),
  )
  shown = show and jax.process_index() == 0
  with Progress(-(-len(source) // batch_size), "evaluating", unit="batch", enabled=shown) as bar:
    for batch in batches:
      out = eval_step(
        state, sharding.shard_batch({k: batch[k] for k in ("image", "label", "valid")}, mesh)
      )
      for k in totals:
        totals[k] += float(out[k])
      valid = sharding.gather(batch["valid"])
      logits.append(sharding.gather(out["logits"])[valid])
      labels.append(sharding.gather(batch["label"])[valid])
      bar.update()
  n = max(totals["count"], 1.0)
  logits, labels = np.concatenate(logits), np.concatenate(labels)
  return {
    "loss": totals["loss_sum"] / n,
    "accuracy": totals["correct"] / n,
    "logits": logits,
    "labels": labels,
    "confusion": confusion_matrix(labels, logits.argmax(-1), logits.shape[-1]),
  }


def _save_config(config, workdir: pathlib.Path) -> None:
  path = workdir / "config.json"
  text = config.to_json_best_effort(indent=2)
  if path.exists() and json.loads(path.read_text()) != json.loads(text):
    logging.warning("%s: config differs from the run being resumed; using the new one", path)
  path.write_text(text)


@dataclasses.dataclass
class DivergenceGuard:
  """Tells when a loss is not finite or exceeds `factor` times the first logged training loss
  (`first`, set by the first call)."""

  factor: float
  first: float | None = None

  def problem(self, loss: float) -> str | None:
    if not math.isfinite(loss):
      return f"loss is {loss}"
    if self.first is None:
      self.first = loss
    elif self.first > 0 and loss > self.factor * self.first:
      first = f"the first training loss {self.first:.4g}"
      return f"loss {loss:.4g} is more than {self.factor:g}x {first}"
    return None


class _Loop:
  """The steps of one run after its setup: train, log, evaluate, checkpoint, stop."""

  def __init__(self, config, workdir, data, info, graphdef, steps_per_epoch, mngr, train_iter):
    self.config, self.cfg, self.workdir = config, config.train, workdir
    self.data, self.info, self.mngr, self.train_iter = data, info, mngr, train_iter
    self.steps_per_epoch = steps_per_epoch
    self.total = self.cfg.num_epochs * steps_per_epoch
    self.checkpoint_every = max(1, int(self.cfg.checkpoint_every_epochs * steps_per_epoch))
    self.main = jax.process_index() == 0  # process 0 writes logs; every process checkpoints
    self.mesh = sharding.data_mesh()
    self.log = MetricsLog(workdir / "metrics.jsonl")
    self.guard = DivergenceGuard(float(self.cfg.get("divergence_factor", 100.0)))
    self.learning_rate = learning_rate_schedule(self.cfg, steps_per_epoch)
    extra = losses.get_extra_loss(self.cfg.extra_loss)
    norm = info.normalization
    attack = adversarial.from_config(self.cfg, config.seed)
    self.train_step = make_train_step(
      graphdef, norm, extra, self.cfg.extra_loss_weight, adversarial=attack
    )
    self.eval_step = make_eval_step(graphdef, norm)
    self.gradient_step = make_gradient_step(graphdef, norm)
    self.last_good = mngr.latest_step()

  def run(self, state) -> dict:
    step, final = self.mngr.latest_step() or 0, {}
    if step:
      state, meta = checkpoint.restore(self.mngr, step, state, self.train_iter)
      self.guard.first = meta.get("first_loss")  # checkpoints before the guard have none
      # A finished run run again returns (and summarises) its last evaluation, not nothing.
      final = {k: meta[k] for k in ("val_loss", "val_accuracy", "epoch") if k in meta}
      if self.main:
        self.log.truncate(after_step=step)
        say(f"resumed from step {step} of {self.total}")
    state = sharding.replicate(state, self.mesh)
    board = TensorBoard(self.workdir, enabled=self.main, resumed_at=step)
    bar = Progress(self.total, "training", unit="step", initial=step, enabled=self.main)
    sums, count, t_last = None, 0, time.perf_counter()
    with contextlib.closing(board), bar, StopRequest() as stop:
      while step < self.total:
        state, metrics = self.train_step(state, self._next_batch(step, state, stop))
        step += 1
        sums = metrics if sums is None else jax.tree.map(lambda a, b: a + b, sums, metrics)
        count += 1
        at_checkpoint = step % self.checkpoint_every == 0 or step == self.total
        logged = step % self.cfg.log_every_steps == 0 or at_checkpoint
        if logged:
          means = self._log_train(step, sums, count, time.perf_counter() - t_last, board)
          bar.moveto(step, loss=means["loss"], acc=means["accuracy"])
          sums, count, t_last = None, 0, time.perf_counter()
        else:
          bar.moveto(step)
        if at_checkpoint:
          final = self._validate(step, state, board)
          # A model whose validation loss exploded is no good checkpoint to keep.
          self._check(self.guard.problem(final["val_loss"]), step, "validation ")
          self._save(step, state, final)
          t_last = time.perf_counter()  # evaluation time is not training throughput
        # Several processes agree at log steps (a collective per step would cost), so all stop
        # at the same step and save together.
        poll = jax.process_count() == 1 or logged  # the last step is logged
        if poll and sharding.any_process(stop.requested):
          self._stop(step, state, stop.status)
    return final

  def _next_batch(self, step: int, state, stop: StopRequest) -> dict:
    try:
      return sharding.shard_batch(next(self.train_iter), self.mesh)
    except Exception:
      if stop.requested:  # a data worker took the Ctrl-C while it was starting, and died
        self._stop(step, state, stop.status)
      raise

  def _log_train(self, step: int, sums, count: int, seconds: float, board) -> dict:
    means = {k: float(v) / count for k, v in jax.device_get(sums).items()}
    self._check(self.guard.problem(means["loss"]), step)
    means["examples_per_s"] = count * self.cfg.batch_size / max(seconds, 1e-9)
    means["epoch"] = step / self.steps_per_epoch
    means["learning_rate"] = float(self.learning_rate(step - 1))  # the last step's rate
    if self.main:
      self.log.write(step, "train", means)
    board.scalars(step, "train", means)
    return means

  def _check(self, problem: str | None, step: int, which: str = "") -> None:
    """Stops the run (UserError) if the guard found a `problem` with the loss at `step`."""
    if problem is None:
      return
    kept = (
      f"the last good checkpoint is step {self.last_good} in {self.mngr.directory}"
      if self.last_good is not None
      else "no checkpoint was saved before"
    )
    raise UserError(
      f"training diverged: {which}{problem} by step {step}; stopped, {kept} (try a lower "
      "config.train.learning_rate)"
    )

  def _validate(self, step: int, state, board) -> dict:
    source = self.data.splits["validation"]
    seen = datasets.record_transforms(self.config.data)
    val = evaluate(self.eval_step, state, source, self.mesh, self.config.eval.batch_size, seen)
    final = {
      "val_loss": val["loss"],
      "val_accuracy": val["accuracy"],
      "epoch": step / self.steps_per_epoch,
    }
    if self.main:
      self.log.write(step, "validation", final)
    board.scalars(step, "validation", {"loss": val["loss"], "accuracy": val["accuracy"]})
    items, gradients = None, None
    n = min(int(self.cfg.get("tensorboard_images", 0)), len(source))
    if n:  # every process: the gradient step is a computation over all devices
      records = [datasets.apply(seen, source[i]) for i in range(n)]
      items = {
        "image": np.stack([r["image"] for r in records]),
        "label": np.array([int(r["label"]) for r in records], np.int32),
        "prediction": val["logits"][:n].argmax(-1),
      }
      gradients = np.asarray(self.gradient_step(state, items["image"], items["label"]))
    board.evaluation_figures(step, val["confusion"], self.info.class_names, items, gradients)
    if self.main:
      say(f"step {step}: validation accuracy {val['accuracy']:.4f} loss {val['loss']:.4f}")
    return final

  def _meta(self, step: int, final: dict) -> dict:
    return {"step": step, "first_loss": self.guard.first, **final}

  def _save(self, step: int, state, final: dict) -> None:
    checkpoint.save(self.mngr, step, state, self.train_iter, self._meta(step, final), final)
    self.last_good = step

  def _stop(self, step: int, state, status: int) -> None:
    """Saves the current step (unless it was just saved), waits for it, raises Interrupted."""
    if self.mngr.latest_step() != step:
      checkpoint.save(self.mngr, step, state, self.train_iter, self._meta(step, {}))
    self.mngr.wait_until_finished()
    raise Interrupted(
      f"interrupted at step {step} of {self.total}: saved checkpoint "
      f"{self.mngr.directory / str(step)}; run the same command again to resume from it",
      status,
    )


def train_and_evaluate(config, workdir: str | pathlib.Path) -> dict:
  """Trains config.model on config.data, evaluating on the validation split every epoch.

  Resumes from the latest checkpoint in `workdir/checkpoints` if there is one. Returns the
  final metrics (also in `workdir/metrics.jsonl`, one JSON object per line).
  """
  validation.check_config(config, jax.device_count())
  validation.check_model_fits(config)
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  main = jax.process_index() == 0
  if main:
    _save_config(config, workdir)
  data = datasets.build(config.data, workdir, write=main)
  info = datasets.data_info(config.data, data, workdir, write=main)
  cfg = config.train
  train_source = datasets.training_source(config.data, data.splits["train"], len(data.class_names))
  steps_per_epoch = len(train_source) // cfg.batch_size
  if steps_per_epoch == 0:
    raise UserError(
      f"config.train.batch_size: {cfg.batch_size} is larger than the training split "
      f"({len(train_source)} items)"
    )
  model = build_model(config, info.image_shape, len(info.class_names))
  optimizer = nnx.Optimizer(model, make_optimizer(cfg, steps_per_epoch), wrt=nnx.Param)
  graphdef, state = nnx.split((model, optimizer))
  del model, optimizer
  train_iter = iter(
    pipeline.train_dataset(
      train_source,
      batch_size=cfg.batch_size,
      seed=config.seed,
      augment=config.data.augment,
      transforms=datasets.training_transforms(config.data),
      num_workers=config.data.num_workers,
      prefetch_buffer=config.data.prefetch,
      process_index=jax.process_index(),
      process_count=jax.process_count(),
    )
  )
  # Closing the iterator stops grain's worker processes and frees their shared memory.
  with (
    contextlib.closing(train_iter),
    checkpoint.manager(workdir / "checkpoints", cfg.keep_checkpoints) as mngr,
  ):
    loop = _Loop(config, workdir, data, info, graphdef, steps_per_epoch, mngr, train_iter)
    final = loop.run(state)
    mngr.wait_until_finished()
  if main:
    summary = {"step": loop.total, **final}
    (workdir / "train_summary.json").write_text(json.dumps(summary, indent=2))
  return final
