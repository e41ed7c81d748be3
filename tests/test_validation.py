"""Config fields and flags are checked in one place before any work: one line naming the field,
exit 2. Every field of every config file has a rule; random values never get past the check
with anything but a UserError."""

import math
import re
import shutil
import subprocess
import sys

import ml_collections
import pytest
from conftest import ROOT
from hypothesis import given, settings
from hypothesis import strategies as st

from bugnist_jax import config_defaults
from bugnist_jax.errors import UserError
from bugnist_jax.models import MODELS
from bugnist_jax.training.loop import DivergenceGuard
from bugnist_jax.validation import check_config, check_model_fits, leaves, rule_for

# Every config file with each of its variants.
CONFIG_FILES = {
  "synthetic3d": ("", "smoke"),
  "bugnist3d": ("",),
  "caltech2d": ("arch1", "arch2", "arch3", "arch1,smoke"),
  "vgg19_transfer": ("", "smoke"),
  "shortcut_study": ("", "smoke"),
}


def _configs():
  import importlib

  for name, variants in CONFIG_FILES.items():
    module = importlib.import_module(name)
    for variant in variants:
      yield f"{name}:{variant}", module.get_config(variant or None)
  for model in MODELS:
    yield f"base(model={model})", config_defaults.base(model=model)


def _run(*args):
  return subprocess.run(
    [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
  )


def _one_line(out, *fragments) -> str:
  assert out.returncode == 2, out.stderr[-2000:]
  assert "Traceback" not in out.stderr, out.stderr[-2000:]
  lines = out.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr[-2000:]
  for f in fragments:
    assert f in lines[0], lines[0]
  return lines[0]


def test_every_numeric_field_of_every_config_has_a_range_and_the_files_pass():
  for name, config in _configs():
    check_config(config)
    for field, value in leaves(config).items():
      rule = rule_for(field, value, config)
      bounds = {k: v for k, v in rule.meta().items() if v is not None}
      if rule.kind in (int, float):  # a new field: declare its range in validation.RULES
        assert bounds, f"{name}: config.{field} has no range (bugnist_jax/validation.py RULES)"


def _with(config: ml_collections.ConfigDict, field: str, value) -> ml_collections.ConfigDict:
  """`config` with `field` set to `value`, of any type (a ConfigDict refuses a new type)."""
  d = config.to_dict()
  *parents, leaf = field.split(".")
  node = d
  for p in parents:
    node = node[p]
  node[leaf] = value
  return ml_collections.ConfigDict(d)


@pytest.mark.parametrize(
  "field, value, message",
  [
    ("train.batch_size", 0, "config.train.batch_size: 0 must be >= 1"),
    ("train.batch_size", 2.5, "config.train.batch_size: 2.5 is not int"),
    ("train.learning_rate", -1.0, "config.train.learning_rate: -1.0 must be > 0"),
    ("train.learning_rate", math.nan, "config.train.learning_rate: nan is not a finite number"),
    ("train.num_epochs", 0, "config.train.num_epochs: 0 must be >= 1"),
    ("train.momentum", 1.0, "config.train.momentum: 1.0 must be < 1"),
    ("train.grad_clip", -1.0, "config.train.grad_clip: -1.0 must be >= 0"),
    ("train.divergence_factor", 1.0, "config.train.divergence_factor: 1.0 must be > 1"),
    ("train.optimizer", "adagrad", "config.train.optimizer: 'adagrad' is not one of adam"),
    ("eval.batch_size", -4, "config.eval.batch_size: -4 must be >= 1"),
    ("data.shape", (32, 16), "config.data.shape: (32, 16) must be (Z, Y, X)"),
    ("data.shape", (32, 0, 16), "config.data.shape: 0 must be >= 1"),
    ("data.split_fractions", (0.5, 0.5, 0.5), "config.data.split_fractions: (0.5, 0.5, 0.5)"),
    ("data.split_fractions", (1.0, 0.0, 0.0), "config.data.split_fractions: (1.0, 0.0, 0.0) must"),
    ("data.split_fractions", (0.7, 0.3), "config.data.split_fractions: (0.7, 0.3) must have 3"),
    ("data.shortcut_strength", 1.5, "config.data.shortcut_strength: 1.5 must be <= 1"),
    ("data.packing_threshold", 300, "config.data.packing_threshold: 300 must be <= 255"),
    ("data.num_examples", 0, "config.data.num_examples: 0 must be >= 1"),
    ("data.normalization", "zscore", "config.data.normalization: 'zscore' is not one of"),
    ("model.dropout", 1.0, "config.model.dropout: 1.0 must be < 1"),
    ("model.channels", (4, -8, 8, 8), "config.model.channels: -8 must be >= 1"),
    ("seed", -1, "config.seed: -1 must be >= 0"),
  ],
)
def test_bad_values_are_one_line_naming_the_field(field, value, message):
  from conftest import smoke_config

  with pytest.raises(UserError) as e:
    check_config(_with(smoke_config(), field, value))
  assert str(e.value).startswith(message), str(e.value)
  assert "\n" not in str(e.value)


def test_study_sections_and_device_count_are_checked():
  import shortcut_study

  config = shortcut_study.get_config("smoke")
  for field, value, message in [
    ("study.ig_steps", 0, "config.study.ig_steps: 0 must be >= 1"),
    ("study.methods", ("smoothgrads",), "config.study.methods: 'smoothgrads' is not one of"),
    ("sanity.num_examples", 0, "config.sanity.num_examples: 0 must be >= 1"),
    ("study.conditions", ("raw", "cooked"), "config.study.conditions: 'cooked' is not one of"),
  ]:
    with pytest.raises(UserError, match=f"^{message}"):
      check_config(_with(config, field, value))
  with pytest.raises(UserError, match="config.train.batch_size: 8 is not divisible by the 3 dev"):
    check_config(config, devices=3)


def test_fields_added_later_are_checked_by_type_and_by_their_names(monkeypatch):
  """A new model's constructor field, a new config section, a base field of the wrong type."""
  from conftest import smoke_config

  from bugnist_jax import models
  from bugnist_jax.models.cnn3d import BugCNN3D

  class Deeper(BugCNN3D):
    def __init__(self, *, depth: int = 3, scale: float = 1.0, **kw):
      super().__init__(**kw)

  monkeypatch.setitem(models.MODELS, "deeper", models.ModelSpec(Deeper, "test", (16, 16, 16)))
  config = smoke_config().to_dict()
  config["model"] = {"name": "deeper", "depth": 3, "scale": 1.0}
  config["probe"] = {"num_items": 4, "sigma": 0.1, "keep_fraction": 0.5, "tag": "x"}
  config = ml_collections.ConfigDict(config)
  check_config(config)
  for field, value, message in [
    ("model.depth", "3", "config.model.depth: '3' is not int"),  # from the annotation
    ("model.scale", True, "config.model.scale: True is not float"),
    ("probe.num_items", 0, "config.probe.num_items: 0 must be >= 1"),  # from the name
    ("probe.sigma", -0.1, "config.probe.sigma: -0.1 must be > 0"),
    ("probe.keep_fraction", 1.5, "config.probe.keep_fraction: 1.5 must be <= 1"),
    ("probe.sigma", math.inf, "config.probe.sigma: inf is not a finite number"),
    ("data.remove_packing", 3, "config.data.remove_packing: 3 is not bool"),  # base's type
    ("data.num_workers", 0.5, "config.data.num_workers: 0.5 is not int"),
  ]:
    with pytest.raises(UserError, match=f"^{message}"):
      check_config(_with(config, field, value))


def test_a_shape_too_small_for_the_model_stops_before_the_data_is_read(tmp_path):
  from conftest import smoke_config

  from bugnist_jax.training.loop import train_and_evaluate

  check_model_fits(smoke_config())
  with pytest.raises(UserError, match=r"^config.model: input_shape \(8, 8, 8\) is too small"):
    train_and_evaluate(smoke_config(**{"data.shape": (8, 8, 8)}), tmp_path / "run")
  assert not (tmp_path / "run").exists()


_ANY = st.one_of(
  st.none(),
  st.booleans(),
  st.integers(-(2**40), 2**40),
  st.floats(allow_nan=True, allow_infinity=True),
  st.text(max_size=8),
  st.tuples(st.integers(-5, 300), st.integers(-5, 300)),
  st.tuples(st.floats(-2, 2), st.floats(-2, 2), st.floats(-2, 2)),
  st.lists(st.text(max_size=4), max_size=3).map(tuple),
)


def _homes() -> dict[str, ml_collections.ConfigDict]:
  """A config that has the field, for every field of some config."""
  homes = {}
  for _, config in _configs():
    for field in leaves(config):
      homes.setdefault(field, config)
  return homes


HOMES = _homes()


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(sorted(HOMES)), value=_ANY)
def test_any_value_of_any_field_passes_or_is_one_user_error_naming_it(field, value):
  try:
    check_config(_with(HOMES[field], field, value))
  except UserError as e:
    message = str(e)
    assert "\n" not in message
    assert message.startswith("config."), message  # the field, or one it must agree with


def test_divergence_guard_stops_on_growth_and_non_finite_losses():
  guard = DivergenceGuard(100.0)
  assert guard.problem(2.5) is None and guard.first == 2.5
  assert guard.problem(200.0) is None  # 80x: still training
  assert guard.problem(3.7e22) == "loss 3.7e+22 is more than 100x the first training loss 2.5"
  assert guard.problem(math.nan) == "loss is nan"
  assert DivergenceGuard(100.0, first=2.5).problem(math.inf) == "loss is inf"


def test_a_growing_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
  """The issue's learning rate of -1 is refused by the config check now; past it (a loss that
  grows for any reason) the guard stops the run, which on main trained to 3.7e22, exit 0. The
  validation loss explodes first: the checkpoint of that step is not saved."""
  from conftest import smoke_config
  from test_resume import _finished_checkpoints

  from bugnist_jax import validation
  from bugnist_jax.training.loop import train_and_evaluate

  monkeypatch.setattr(validation, "check_config", lambda config, devices=1: None)
  small = {"data.num_examples": 48, "train.num_epochs": 1, "train.log_every_steps": 1}
  overrides = {"train.learning_rate": -1.0, "train.checkpoint_every_epochs": 0.25, **small}
  with pytest.raises(UserError) as e:
    train_and_evaluate(smoke_config(**overrides), tmp_path)  # 3 steps, each checkpointed
  message = str(e.value)
  found = re.match(
    r"training diverged: (validation )?loss \S+ is more than 100x the first training loss "
    r"\S+ by step (\d+); stopped, the last good checkpoint is step (\d+) in ",
    message,
  )
  assert found and "\n" not in message, message
  diverged, kept = map(int, found.groups()[1:])
  assert _finished_checkpoints(tmp_path)[-1] == kept < diverged  # nothing saved after it


@pytest.mark.parametrize(
  "override, fragment",
  [
    ({"train.batch_size": 0}, "config.train.batch_size: 0 must be >= 1"),  # was 1/0
    ({"train.learning_rate": -1.0}, "config.train.learning_rate: -1.0 must be > 0"),
  ],
)
def test_bad_training_numbers_stop_before_any_work(tmp_path, override, fragment):
  """In this process: `cli.run` prints any UserError as one line, exit 2 (test_commands)."""
  from conftest import smoke_config

  from bugnist_jax.training.loop import train_and_evaluate

  with pytest.raises(UserError, match=f"^{re.escape(fragment)}"):
    train_and_evaluate(smoke_config(**override), tmp_path / "run")
  assert not (tmp_path / "run").exists()


def test_the_issues_sigma_flag_is_one_line_and_writes_nothing(trained_run, tmp_path):
  workdir = shutil.copytree(trained_run, tmp_path / "run")
  shutil.rmtree(workdir / "explain", ignore_errors=True)
  out = _run("bugnist_jax.explain", f"--workdir={workdir}", "--method=smoothgrad", "--sigma=-1")
  _one_line(out, "--sigma: -1.0 must be > 0")
  assert not (workdir / "explain").exists()


@pytest.mark.parametrize(
  "options, fragment",
  [
    ({"window": 4, "stride": 16}, "--stride: 16 is larger than --window 4"),
    ({"num_samples": 0}, "--num_samples: 0 must be >= 1"),
    ({"sigma": math.nan}, "--sigma: nan is not a finite number"),
  ],
)
def test_bad_explain_options_stop_before_any_work(trained_run, tmp_path, options, fragment):
  from bugnist_jax.attribution import ExplainRequest, Options, explain_run

  workdir = shutil.copytree(trained_run, tmp_path / "run")
  shutil.rmtree(workdir / "explain", ignore_errors=True)
  with pytest.raises(UserError, match=f"^{re.escape(fragment)}"):
    explain_run(workdir, ExplainRequest(method=("smoothgrad",), options=Options(**options)))
  assert not (workdir / "explain").exists()
