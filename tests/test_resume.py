"""Killing training with SIGKILL and running the same command again ends where an
uninterrupted run ends."""

import json
import pathlib
import signal
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
CMD = [sys.executable, "-m", "bugnist_jax.train", "--config=configs/synthetic3d.py:smoke"]


def _finished_checkpoints(workdir: pathlib.Path) -> list[int]:
  ckpt = workdir / "checkpoints"
  return sorted(int(p.name) for p in ckpt.iterdir() if p.name.isdigit()) if ckpt.exists() else []


def _validation(workdir: pathlib.Path) -> list[dict]:
  lines = (workdir / "metrics.jsonl").read_text().splitlines()
  return [r for r in map(json.loads, lines) if r["split"] == "validation"]


def test_resume_after_sigkill_matches_an_uninterrupted_run(trained_run, tmp_path):
  workdir = tmp_path / "killed"
  proc = subprocess.Popen(
    [*CMD, f"--workdir={workdir}"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
  )
  deadline = time.time() + 600
  while not _finished_checkpoints(workdir) and time.time() < deadline and proc.poll() is None:
    time.sleep(0.2)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  first = _finished_checkpoints(workdir)
  assert first, "the run ended before its first checkpoint"
  total = _validation(trained_run)[-1]["step"]
  assert first[-1] < total, "killed too late to test resuming"

  out = subprocess.run(
    [*CMD, f"--workdir={workdir}"], cwd=ROOT, capture_output=True, text=True, timeout=600
  )
  assert out.returncode == 0, out.stderr[-2000:]
  assert f"resumed from step {first[-1]}" in out.stderr
  resumed, reference = _validation(workdir), _validation(trained_run)
  assert [r["step"] for r in resumed] == [r["step"] for r in reference]
  for a, b in zip(resumed, reference, strict=True):
    assert abs(a["val_loss"] - b["val_loss"]) < 1e-5, (a, b)
    assert a["val_accuracy"] == b["val_accuracy"]
