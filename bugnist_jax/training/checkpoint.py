"""Checkpoints through an orbax CheckpointManager: model + optimizer state, data iterator, meta.

Keeps the latest `keep` checkpoints and the best one by validation accuracy. A run killed at
any point (even SIGKILL mid-save: orbax writes to a temporary folder and renames when done)
resumes from the last finished checkpoint. A checkpoint saved on a signal between evaluations
has no metrics: it is kept while it is among the latest, and is never the best.
"""

import pathlib

import grain
import jax
import orbax.checkpoint as ocp
from flax import nnx
from jax.sharding import SingleDeviceSharding
from orbax.checkpoint.checkpoint_managers import preservation_policy as policies

from bugnist_jax.errors import UserError

BEST_METRIC = "val_accuracy"


def manager(directory: str | pathlib.Path, keep: int = 2) -> ocp.CheckpointManager:
  """A CheckpointManager keeping the `keep` latest checkpoints and the best by val accuracy."""
  policy = policies.AnyPreservationPolicy(
    [
      policies.LatestN(n=keep),
      policies.BestN(
        get_metric_fn=lambda m: m[BEST_METRIC],
        n=1,
        reverse=False,
        keep_checkpoints_without_metrics=False,  # else every interrupted step stays forever
      ),
    ]
  )
  options = ocp.CheckpointManagerOptions(preservation_policy=policy, create=True)
  return ocp.CheckpointManager(pathlib.Path(directory).absolute(), options=options)


def save(mngr, step: int, state, data_iter, meta: dict, metrics: dict | None = None) -> None:
  """Saves (asynchronously) a (model, optimizer) nnx state pair, the grain iterator position
  and a JSON meta dict. Model and optimizer are separate items so inference restores only
  the model."""
  mngr.save(
    step,
    args=ocp.args.Composite(
      model=ocp.args.StandardSave(state[0]),
      optimizer=ocp.args.StandardSave(state[1]),
      data=grain.checkpoint.CheckpointSave(data_iter),
      meta=ocp.args.JsonSave(meta),
    ),
    metrics=metrics,
  )


def best_step(mngr) -> int | None:
  """Step of the checkpoint with the highest validation accuracy (latest if none has one)."""
  return mngr.best_step() if mngr.best_step() is not None else mngr.latest_step()


def _restore(mngr, step: int, **items) -> dict:
  try:
    return mngr.restore(step, args=ocp.args.Composite(**items))
  except (ValueError, KeyError, TypeError) as e:
    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
    raise UserError(
      f"{mngr.directory / str(step)}: checkpoint does not match the configured model "
      f"(written by another model or config?): {first[:300]}"
    ) from None


def restore(mngr, step: int, abstract_state, data_iter) -> tuple[nnx.State, dict]:
  """Restores a training checkpoint: ((model, optimizer) state, meta), and moves `data_iter`
  to the saved position. A checkpoint of another model is a UserError."""
  restored = _restore(
    mngr,
    step,
    model=ocp.args.StandardRestore(abstract_state[0]),
    optimizer=ocp.args.StandardRestore(abstract_state[1]),
    data=grain.checkpoint.CheckpointRestore(data_iter),
    meta=ocp.args.JsonRestore(),
  )
  return nnx.State({0: restored["model"], 1: restored["optimizer"]}), restored["meta"]


def restore_model(mngr, step: int, abstract_model_state) -> nnx.State:
  """Restores only the model's state (for evaluation and explanation), onto this process's
  first device, whatever number of processes and devices wrote it."""
  target = _on_local_device(abstract_model_state)
  return _restore(mngr, step, model=ocp.args.StandardRestore(target))["model"]


def _on_local_device(abstract_state):
  """Abstract leaves without a sharding get this process's first device: orbax restores a
  checkpoint written by another topology (a multi-host run) only into explicit shardings."""
  sharding = SingleDeviceSharding(jax.local_devices()[0])

  def target(leaf):
    if isinstance(leaf, jax.ShapeDtypeStruct) and leaf.sharding is None:
      return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding)
    return leaf

  return jax.tree.map(target, abstract_state)
