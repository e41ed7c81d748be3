"""Shared fixtures: tiny trained 3D and 2D runs that the evaluate/explain/inspection tests reuse.

Tests run on tiny shapes, where XLA's compile time is most of the time: like Flax's own
`train_test.py`, they compile with most optimisations off (`JAX_DISABLE_MOST_OPTIMIZATIONS`,
also for the commands the tests start as subprocesses). Numbers do not change; speed is
measured by the benchmarks, not here.
"""

import os
import pathlib
import sys

import pytest

os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
# 3D convolutions through XLA's own ('auto' is the CPU fast path 'planes' otherwise): the same
# function (tests/test_conv_impls.py, tests/test_planes.py), compiled 3-5x faster at tiny sizes.
# Tests of the fast path name `conv_impl='planes'`.
os.environ.setdefault("BUGNIST_CONV_IMPL", "xla")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
  """Keeps each `xdist_group` on one worker under `--dist loadgroup` with pytest 9.

  pytest-xdist 3.8 marks a group by a suffix on `item._nodeid`, which pytest 9 no longer reads
  (its node id is `item._id`): without this, a module's expensive shared fixture (the explain
  table, a trained study) was built on both workers. Runs after xdist's hook, on the workers.
  """
  if not getattr(config.option, "loadgroup", False):
    return
  for item in items:
    groups = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                     for m in item.iter_markers("xdist_group")})  # fmt: skip
    if groups and "@" not in item.nodeid and hasattr(item, "_id"):
      item._id = type(item._id).parse(f"{item.nodeid}@{'_'.join(groups)}")


ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "configs"))


def smoke_config(**overrides):
  """configs/synthetic3d.py:smoke with dotted overrides, e.g. {'train.num_epochs': 1}."""
  import synthetic3d

  from bugnist_jax.config_defaults import with_overrides

  return with_overrides(synthetic3d.get_config("smoke"), **overrides)


def smoke_config_2d(**overrides):
  """configs/caltech2d.py:arch1,smoke made smaller still (48x48 images, one epoch)."""
  import caltech2d

  from bugnist_jax.config_defaults import with_overrides

  small = {
    "data.shape": (48, 48),
    "data.num_examples": 60,
    "train.num_epochs": 1,
    "eval.batch_size": 10,
  }
  return with_overrides(caltech2d.get_config("arch1,smoke"), **(small | overrides))


@pytest.fixture(scope="module")
def x64():
  """Float64 for one module (`pytestmark = pytest.mark.usefixtures("x64")`), for tight
  comparisons with hand computations and the float64 peers; restored afterwards."""
  import jax

  previous = jax.config.jax_enable_x64
  jax.config.update("jax_enable_x64", True)
  yield
  jax.config.update("jax_enable_x64", previous)


@pytest.fixture(scope="module", params=[((8, 8), 2), ((4, 6, 6), 1)], ids=["2d", "3d"])
def torch_pair(request, x64):
  """(a tiny float64 JAX CNN of test_saliency.py, its PyTorch port), 2D and 3D: the parity
  tests' models (tests/_torch_port.py; needs torch)."""
  from _torch_port import TorchCNN, models

  spatial, cin = request.param
  cnn = models.model(spatial, cin=cin)
  return cnn, TorchCNN(cnn.params)


def _trained_once(tmp_path_factory, name: str, config) -> pathlib.Path:
  """A workdir of `config`'s run, trained once per test session rather than once per xdist
  worker (the first worker to ask trains, under a file lock, as pytest-xdist's docs suggest);
  each worker gets its own copy, since tests write into the run (explain/, evaluation/)."""
  import shutil

  from filelock import FileLock

  from bugnist_jax.training.loop import train_and_evaluate

  base = tmp_path_factory.getbasetemp()
  shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # the session's
  trained = shared / f"{name}_trained"
  with FileLock(str(shared / f"{name}.lock")):
    if not (shared / f"{name}.done").exists():
      train_and_evaluate(config(), trained)
      (shared / f"{name}.done").touch()
  workdir = tmp_path_factory.mktemp(name)
  shutil.copytree(trained, workdir, dirs_exist_ok=True)
  return workdir


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> pathlib.Path:
  """Workdir of a finished 2-epoch smoke run (tiny 3D CNN on 32x16x16 synthetic volumes), with
  the TensorBoard gradient figures of 2 validation items (the `:smoke` configs turn them off)."""
  return _trained_once(
    tmp_path_factory, "smoke_run", lambda: smoke_config(**{"train.tensorboard_images": 2})
  )


@pytest.fixture(scope="session")
def trained_run_2d(tmp_path_factory) -> pathlib.Path:
  """Workdir of a finished 1-epoch run of Caltech architecture 1 on 48x48 synthetic images."""
  return _trained_once(tmp_path_factory, "smoke_run_2d", smoke_config_2d)
