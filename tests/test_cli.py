"""The commands as a user runs them: outputs on success, one clear line and exit 2 on bad input."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from bugnist_jax.attribution import ExplainRequest, explain_run
from bugnist_jax.data.classes import CLASS_CODES
from bugnist_jax.errors import UserError
from bugnist_jax.evaluation import evaluate_run

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run(module, *args, timeout=600):
  return subprocess.run(
    [sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
  )


def _one_line_error(out, *fragments):
  assert out.returncode == 2, out.stderr[-2000:]
  lines = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
  assert len(lines) == 1, out.stderr[-2000:]
  assert "Traceback" not in out.stderr
  for f in fragments:
    assert f in lines[0], lines[0]


def test_evaluate_writes_confusion_matrices_and_reports(trained_run):
  reports = evaluate_run(trained_run, splits=("validation", "test"))
  for split in ("validation", "test"):
    for suffix in ("png", "csv"):
      assert (trained_run / "eval" / f"confusion_{split}.{suffix}").stat().st_size > 0
    report = json.loads((trained_run / "eval" / f"metrics_{split}.json").read_text())
    cm = np.array(report["confusion"])
    assert cm.shape == (12, 12) and cm.sum() == 12  # 96 examples, 15% per split
    assert report["accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
    assert set(report["per_class"]) == set(CLASS_CODES)
    assert reports[split]["accuracy"] == report["accuracy"]


def test_explain_writes_figures_arrays_and_imagej_tiffs(trained_run):
  request = ExplainRequest(
    method=("smoothgrad", "grad_cam"), indices=(0, 3), sigma_sweep=(0.1, 0.3)
  )
  maps = explain_run(trained_run, request)
  out = trained_run / "explain"
  assert maps["smoothgrad"].shape == (2, 32, 16, 16, 1)
  assert maps["grad_cam"].shape == (2, 32, 16, 16)
  for name in (
    "test_00000_smoothgrad.png",
    "test_00003_grad_cam.png",
    "test_methods.png",
    "test_sigma_sweep.png",
  ):
    assert (out / name).stat().st_size > 10_000, name
  with tifffile.TiffFile(out / "test_00003.tif") as tif:
    assert tif.is_imagej
    assert tif.asarray().shape == (32, 3, 16, 16)  # volume + two maps
  saved = np.load(out / "smoothgrad.npz")
  np.testing.assert_array_equal(saved["indices"], [0, 3])


def test_explain_rejects_bad_requests(trained_run):
  with pytest.raises(UserError, match="unknown 'smoothgrads'"):
    explain_run(trained_run, ExplainRequest(method=("smoothgrads",)))
  with pytest.raises(UserError, match="--indices: 99 is out of range"):
    explain_run(trained_run, ExplainRequest(method=("vanilla_gradient",), indices=(99,)))
  with pytest.raises(UserError, match="config.json: missing"):
    evaluate_run(trained_run / "nowhere")


def test_misspelled_config_key_is_one_line():
  out = _run(
    "bugnist_jax.train",
    "--config=configs/synthetic3d.py:smoke",
    "--workdir=/tmp/x",
    "--config.train.batchsize=3",
  )
  _one_line_error(out, "batchsize", "batch_size")


def test_missing_data_root_is_one_line(tmp_path):
  out = _run(
    "bugnist_jax.train",
    "--config=configs/bugnist3d.py",
    f"--workdir={tmp_path}",
    f"--config.data.root={tmp_path / 'BugNIST_DATA'}",
  )
  _one_line_error(out, "BugNIST_DATA")


def test_corrupt_tiff_in_real_layout_is_named(tmp_path):
  from bugnist_jax.data.kaggle_export import write_synthetic

  write_synthetic(tmp_path / "data", 24, (32, 16, 16), seed=0, shortcut_strength=0.5, masks=False)
  bad = sorted((tmp_path / "data" / "train" / "GH").glob("*.tif"))[0]
  bad.write_bytes(b"II*\x00garbage")
  (tmp_path / "data" / "train" / "AC" / ".DS_Store").write_bytes(b"\x00\x01")
  out = _run(
    "bugnist_jax.train",
    "--config=configs/bugnist3d.py",
    f"--workdir={tmp_path / 'w'}",
    f"--config.data.root={tmp_path / 'data'}",
    "--config.data.shape=32,16,16",
  )
  _one_line_error(out, bad.name)
  assert not (tmp_path / "w" / "checkpoints").exists()


def test_real_layout_trains_end_to_end(tmp_path):
  from conftest import smoke_config

  from bugnist_jax.data.kaggle_export import write_synthetic
  from bugnist_jax.training.loop import train_and_evaluate

  write_synthetic(tmp_path / "data", 48, (32, 16, 16), seed=1, shortcut_strength=0.5, masks=False)
  (tmp_path / "data" / "train" / "AC" / "notes.txt").write_text("stray file, said once")
  config = smoke_config(
    **{"data.source": "bugnist3d", "data.root": str(tmp_path / "data"), "train.num_epochs": 1}
  )
  final = train_and_evaluate(config, tmp_path / "w")
  assert np.isfinite(final["val_loss"])
  rows = (tmp_path / "w" / "split.csv").read_text().splitlines()
  assert rows[0] == "item,label,split" and len(rows) == 49 and ".tif," in rows[1]
