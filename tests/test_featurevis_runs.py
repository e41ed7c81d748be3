"""Feature visualisations bound to runs: the cache in the workdir (the format the viewer reads),
the figures and TIFF of the featurevis command, and its one-line errors."""

import json
import shutil

import numpy as np
import pytest

from bugnist_jax.errors import UserError
from bugnist_jax.inspection import (
  FeatureVisRequest,
  VisOptions,
  stage_visualizations,
  write_visualizations,
)
from bugnist_jax.inspection.visualization import cache_paths
from bugnist_jax.options import validate
from bugnist_jax.runs import Run
from bugnist_jax.viewer.featurevis import read_cache

FAST = VisOptions(steps=4, batch_size=2)


def _copy(workdir, tmp_path):
  """A copy of a shared test run, so its caches reach no other test (the viewer's lists them)."""
  return shutil.copytree(workdir, tmp_path / workdir.name)


def test_the_cache_holds_the_lead_format_and_is_reused_only_for_the_same_settings(
  trained_run_2d, tmp_path
):
  workdir = _copy(trained_run_2d, tmp_path)
  run = Run.open(workdir)
  vis = stage_visualizations(run, "conv2", (2, 0, 2, 5), FAST)
  assert not vis.cached and vis.channels.tolist() == [2, 0, 5]  # repeats dropped
  npz, meta = cache_paths(workdir, "conv2")
  with np.load(npz) as d:
    assert set(d.files) == {"images", "display", "channels", "activation"}
    assert d["images"].dtype == np.float32 and d["images"].shape == (3, 48, 48, 3)
    assert d["display"].dtype == np.uint8 and d["display"].shape == (3, 48, 48, 3)
    assert d["channels"].dtype == np.int32 and d["activation"].dtype == np.float32
    np.testing.assert_array_equal(d["display"], run.normalization.to_uint8(d["images"]))
  settings = json.loads(meta.read_text())
  assert settings["objective"] == "channel" and settings["steps"] == 4
  assert settings["step"] == run.step and settings["date"] and settings["seed"] == 0
  assert settings["transforms_resolved"]["rotate"] == 10.0  # the 2D defaults
  again = stage_visualizations(run, "conv2", (2, 0, 5), FAST)
  assert again.cached
  np.testing.assert_array_equal(again.images, vis.images)
  other = stage_visualizations(run, "conv2", (2, 0, 5), VisOptions(steps=5, batch_size=2))
  assert not other.cached and json.loads(meta.read_text())["steps"] == 5
  # The viewer reads the display images and the objective from the settings.
  cache = read_cache(workdir, "conv2", (48, 48), 16)
  np.testing.assert_array_equal(cache["images"], other.display)
  assert cache["objective"] == "channel" and cache["channels"].tolist() == [2, 0, 5]


def test_the_command_writes_3d_grids_and_an_imagej_tiff(trained_run, tmp_path):
  import tifffile

  workdir = _copy(trained_run, tmp_path)
  request = FeatureVisRequest(layer="block1", channels=(0, 1), options=FAST)
  paths = write_visualizations(workdir, request)
  assert [p.name for p in paths] == ["block1.png", "block1.tif"]
  assert paths[0].read_bytes()[:4] == b"\x89PNG"
  with tifffile.TiffFile(paths[1]) as tif:
    assert tif.series[0].axes == "ZCYX" and tif.series[0].shape == (32, 2, 16, 16)
    assert list(tif.imagej_metadata["Labels"][:2]) == ["c0", "c1"]
  settings = json.loads(cache_paths(workdir, "block1")[1].read_text())
  assert settings["transforms_resolved"]["flip_axes"] == [0, 1, 2]  # the 3D defaults


def test_bad_requests_are_user_errors_naming_the_flag(trained_run_2d):
  with pytest.raises(UserError, match="^--layer: unknown 'conv9'"):
    write_visualizations(trained_run_2d, FeatureVisRequest(layer="conv9", options=FAST))
  with pytest.raises(UserError, match="^--channels: 99 is out of range"):
    write_visualizations(trained_run_2d, FeatureVisRequest(layer="conv1", channels=(99,)))
  with pytest.raises(UserError, match="^--steps: 0 must be >= 1"):
    validate(FeatureVisRequest(options=VisOptions(steps=0)))
  with pytest.raises(UserError, match="^--objective: 'class' needs logits"):
    stage_visualizations(
      Run.open(trained_run_2d), "conv1", (0,), VisOptions(steps=1, objective="class")
    )
