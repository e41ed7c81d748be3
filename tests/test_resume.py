"""Interrupted training resumes where it stopped: after Ctrl-C (which saves the current step)
and after SIGKILL (the last checkpoint), running the same command again ends with the metrics of
an uninterrupted run. The helpers here start commands and send them real signals."""

import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
CMD = [sys.executable, "-m", "bugnist_jax.train", "--config=configs/synthetic3d.py:smoke"]
STEPS, STEPS_PER_EPOCH = 18, 9  # configs/synthetic3d.py:smoke


def _finished_checkpoints(workdir: pathlib.Path) -> list[int]:
  ckpt = workdir / "checkpoints"
  return sorted(int(p.name) for p in ckpt.iterdir() if p.name.isdigit()) if ckpt.exists() else []


def _validation(workdir: pathlib.Path) -> list[dict]:
  lines = (workdir / "metrics.jsonl").read_text().splitlines()
  return [r for r in map(json.loads, lines) if r["split"] == "validation"]


def compile_cache_env(cache: pathlib.Path) -> dict[str, str]:
  """The environment for commands that share JAX's persistent compilation cache in `cache`:
  the second run of the same config skips compiling (about a third of a smoke run's CPU)."""
  return {
    **os.environ,
    "JAX_COMPILATION_CACHE_DIR": str(cache),
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
  }


def _default_sigint() -> None:
  signal.signal(signal.SIGINT, signal.SIG_DFL)


# A test run from a background job has SIGINT ignored and would hand that on to the command; a
# preexec_fn (which makes subprocess fork, not spawn) only then.
_PREEXEC = _default_sigint if signal.getsignal(signal.SIGINT) is signal.SIG_IGN else None


class Command:
  """A command in a subprocess whose stderr lines are read as they come."""

  def __init__(self, *args: str, env: dict | None = None):
    self.proc = subprocess.Popen(
      [sys.executable, "-m", *args],
      cwd=ROOT,
      stdout=subprocess.DEVNULL,
      stderr=subprocess.PIPE,
      text=True,
      preexec_fn=_PREEXEC,
      env=env,
    )
    self.lines: list[str] = []
    self._reader = threading.Thread(target=self._read, daemon=True)
    self._reader.start()

  def _read(self) -> None:
    for line in self.proc.stderr:
      self.lines.append(line.rstrip("\n"))

  def wait_for(self, ready, timeout: float = 300) -> None:
    """Polls `ready()` until it holds; fails if the command ends first."""
    deadline = time.time() + timeout
    while not ready():
      assert self.proc.poll() is None, "\n".join(self.lines[-30:])
      assert time.time() < deadline, "timed out"
      time.sleep(0.01)

  def freeze_at_first_log(self, workdir) -> None:
    """Stops the process (SIGSTOP) once it logged its first training steps: the signals sent
    next are then handled mid-epoch, well before the first evaluation."""
    metrics = workdir / "metrics.jsonl"
    self.wait_for(lambda: metrics.exists() and '"train"' in metrics.read_text())
    self.proc.send_signal(signal.SIGSTOP)

  def signal(self, *signums: int) -> None:
    for s in signums:
      self.proc.send_signal(s)
    self.proc.send_signal(signal.SIGCONT)

  def finish(self, timeout: float = 300) -> tuple[int, str]:
    self.proc.wait(timeout=timeout)
    self._reader.join(timeout=10)
    return self.proc.returncode, "\n".join(self.lines)


def _one_error_line(status: int, expected: int, err: str) -> str:
  assert status == expected, err[-3000:]
  assert "Traceback" not in err and "Exception ignored" not in err, err[-3000:]
  errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
  assert len(errors) == 1, err[-3000:]
  return errors[0]


def _interrupted_step(line: str) -> int:
  match = re.search(rf"interrupted at step (\d+) of {STEPS}", line)
  assert match, line
  return int(match.group(1))


def test_resume_after_ctrl_c_and_after_sigkill_ends_as_an_uninterrupted_run(trained_run, tmp_path):
  """Ctrl-C mid-epoch saves that step; the same command resumes it (the data iterator's place
  too), is killed with SIGKILL after the epoch's checkpoint, and resumes again from that."""
  workdir, env = tmp_path / "run", compile_cache_env(tmp_path / "jax_cache")
  train = Command(*CMD[2:], f"--workdir={workdir}", env=env)
  train.freeze_at_first_log(workdir)
  train.signal(signal.SIGINT)
  status, err = train.finish()
  line = _one_error_line(status, 130, err)
  step = _interrupted_step(line)
  assert step % STEPS_PER_EPOCH, "stopped at an evaluation: nothing new to test"
  assert f"checkpoints/{step};" in line and "same command" in line
  assert _finished_checkpoints(workdir) == [step]  # the steps since the start are kept

  resumed = Command(*CMD[2:], f"--workdir={workdir}", env=env)
  resumed.wait_for(lambda: STEPS_PER_EPOCH in _finished_checkpoints(workdir), timeout=600)
  resumed.proc.send_signal(signal.SIGKILL)
  status, err = resumed.finish()
  assert status == -signal.SIGKILL, "the run ended before it was killed"
  assert f"resumed from step {step} of {STEPS}" in err

  out = subprocess.run(
    [*CMD, f"--workdir={workdir}"], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env
  )
  assert out.returncode == 0, out.stderr[-2000:]
  assert f"resumed from step {STEPS_PER_EPOCH} of {STEPS}" in out.stderr
  got, reference = _validation(workdir), _validation(trained_run)
  assert [r["step"] for r in got] == [r["step"] for r in reference]
  for a, b in zip(got, reference, strict=True):
    assert abs(a["val_loss"] - b["val_loss"]) < 1e-5, (a, b)
    assert a["val_accuracy"] == b["val_accuracy"]


def test_a_finished_run_run_again_returns_its_last_evaluation(trained_run, tmp_path):
  from conftest import smoke_config

  from bugnist_jax.training.loop import train_and_evaluate

  workdir = shutil.copytree(trained_run, tmp_path / "run")
  final = train_and_evaluate(smoke_config(**{"train.tensorboard_images": 2}), workdir)
  last = _validation(trained_run)[-1]
  assert final == {k: last[k] for k in ("val_loss", "val_accuracy", "epoch")}
  assert json.loads((workdir / "train_summary.json").read_text()) == {"step": STEPS, **final}
  assert _validation(workdir) == _validation(trained_run)  # nothing trained or logged again
