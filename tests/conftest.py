"""Shared fixtures: a tiny trained run that evaluate/explain/inspection tests reuse."""

import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "configs"))


def smoke_config(**overrides):
  """configs/synthetic3d.py:smoke with dotted overrides, e.g. {'train.num_epochs': 1}."""
  import synthetic3d

  from bugnist_jax.config_defaults import with_overrides

  return with_overrides(synthetic3d.get_config("smoke"), **overrides)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> pathlib.Path:
  """Workdir of a finished 2-epoch smoke run (tiny 3D CNN on 32x16x16 synthetic volumes)."""
  from bugnist_jax.training.loop import train_and_evaluate

  workdir = tmp_path_factory.mktemp("smoke_run")
  train_and_evaluate(smoke_config(), workdir)
  return workdir
