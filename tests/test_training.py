import json
import shutil

import numpy as np
import optax
import pytest
from conftest import smoke_config
from flax import nnx

from bugnist_jax.data.transforms import Normalization
from bugnist_jax.errors import UserError
from bugnist_jax.models import get_model
from bugnist_jax.training.loop import train_and_evaluate
from bugnist_jax.training.steps import make_eval_step, make_train_step


def _batch(seed, n=4, shape=(32, 16, 16)):
  rng = np.random.default_rng(seed)
  return {
    "image": rng.integers(0, 255, (n, *shape, 1), dtype=np.uint8),
    "label": rng.integers(0, 12, n).astype(np.int32),
    "valid": np.ones(n, bool),
  }


def test_train_and_eval_steps_compile_once():
  # On the CPU fast path, what 'auto' is for users here (the suite's 'auto' is XLA's).
  tiny = dict(input_shape=(32, 16, 16), channels=(2, 4, 4, 4), dense=8, conv_impl="planes")
  model = get_model("bugcnn3d", dropout=0.2, batch_norm=True, **tiny)
  optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
  graphdef, state = nnx.split((model, optimizer))
  train_step = make_train_step(graphdef, Normalization(0.2, 0.3))
  eval_step = make_eval_step(graphdef, Normalization(0.2, 0.3))
  losses = []
  for seed in range(4):
    state, metrics = train_step(state, {k: v for k, v in _batch(seed).items() if k != "valid"})
    losses.append(float(metrics["loss"]))
    eval_step(state, _batch(seed + 10))
  assert train_step._cache_size() == 1  # one trace, however many steps
  assert eval_step._cache_size() == 1
  assert all(np.isfinite(losses))


def test_short_run_learns_well_above_chance(tmp_path):
  # strength 1: the cotton gives the class away, so a tiny model learns fast. On the CPU fast
  # path: 6 epochs are more running than compiling, and there 'planes' is the faster.
  config = smoke_config(
    **{
      "model.conv_impl": "planes",
      "data.shortcut_strength": 1.0,
      "data.num_examples": 240,
      "train.num_epochs": 6,
      "model.channels": (8, 16, 16, 16),
      "model.dense": 32,
      "train.batch_size": 12,
      "train.learning_rate": 3e-3,
    }
  )
  final = train_and_evaluate(config, tmp_path)
  # chance is 1/12; P(>= 8 of 36 right by chance) < 0.5%
  assert final["val_accuracy"] >= 0.2
  log = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  train = [r for r in log if r["split"] == "train"]
  assert train[-1]["loss"] < 0.9 * train[0]["loss"]
  assert all(r["examples_per_s"] > 0 for r in train)
  assert (tmp_path / "split.csv").exists() and (tmp_path / "data.json").exists()


def test_bfloat16_training_runs(tmp_path):
  config = smoke_config(**{"train.compute_dtype": "bfloat16", "train.num_epochs": 1})
  final = train_and_evaluate(config, tmp_path)
  assert np.isfinite(final["val_loss"])


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(trained_run, tmp_path):
  workdir = tmp_path / "run"
  shutil.copytree(trained_run, workdir)
  last = max(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
  # same optimizer (the checkpoint's state must fit), absurd learning rate
  config = smoke_config(**{"train.num_epochs": 4, "train.learning_rate": 1e12})
  with pytest.raises(UserError, match=f"diverged.*last good checkpoint is step {last}"):
    train_and_evaluate(config, workdir)
  steps = sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
  assert steps[-1] == last


def test_checkpoint_of_another_model_is_a_clear_error(trained_run, tmp_path):
  workdir = tmp_path / "run"
  shutil.copytree(trained_run, workdir)
  config = smoke_config(**{"model.channels": (4, 8, 8, 16), "train.num_epochs": 3})
  with pytest.raises(UserError, match="does not match the configured model"):
    train_and_evaluate(config, workdir)


def test_batch_size_must_fit_the_data(tmp_path):
  config = smoke_config(**{"train.batch_size": 4096})
  with pytest.raises(UserError, match="config.train.batch_size"):
    train_and_evaluate(config, tmp_path)


def test_unknown_source_optimizer_and_model_field_are_user_errors(tmp_path):
  for overrides, field in [
    ({"data.source": "imagenet21k"}, "config.data.source"),
    ({"train.optimizer": "adagrad"}, "config.train.optimizer"),
  ]:
    with pytest.raises(UserError, match=field):
      train_and_evaluate(smoke_config(**overrides), tmp_path / field)
  config = smoke_config()
  config.model.unlock()
  config.model.widths = (1, 2)
  with pytest.raises(UserError, match="config.model"):
    train_and_evaluate(config, tmp_path / "model")
