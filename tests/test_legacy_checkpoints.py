"""Runs written before the architecture refactor (tests/data/legacy_runs, 2026-11-30 layout:
bias moved into the pool by mutating nnx.Conv, the old config schema) still open and give the
logits they gave then."""

import pathlib
import shutil

import numpy as np
import pytest

from bugnist_jax.models.adapters import as_function
from bugnist_jax.runs import Run

LEGACY = pathlib.Path(__file__).parent / "data" / "legacy_runs"


@pytest.mark.parametrize("name", ["bugcnn3d", "cnn2d"])
def test_a_run_of_the_previous_layout_opens_with_the_same_logits(name, tmp_path):
  workdir = shutil.copytree(LEGACY / name, tmp_path / name)
  expected = np.load(workdir / "expected.npz")
  run = Run.open(workdir)
  assert run.step == int(expected["step"])
  assert run.config.model.name == name
  np.testing.assert_allclose(
    as_function(run.model)(expected["x"]), expected["logits"], rtol=1e-5, atol=1e-6
  )
  items = run.records("test", [0, 1])  # the old config (augment as a bool, ...) builds its data
  np.testing.assert_allclose(run.inputs(items["image"]), expected["x"], rtol=1e-6, atol=1e-6)
