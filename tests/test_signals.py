"""Ctrl-C and SIGTERM, sent as real signals to real commands: training saves a checkpoint of the
current step and says how to resume, resuming ends where an uninterrupted run ends, a second
signal stops at once, and every other command ends with one line, never a traceback."""

import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
from test_resume import CMD, ROOT, _finished_checkpoints, _validation

STEPS, STEPS_PER_EPOCH = 18, 9  # configs/synthetic3d.py:smoke


def _default_sigint() -> None:
  signal.signal(signal.SIGINT, signal.SIG_DFL)


# A test run from a background job has SIGINT ignored and would hand that on to the command; a
# preexec_fn (which makes subprocess fork, not spawn) only then.
_PREEXEC = _default_sigint if signal.getsignal(signal.SIGINT) is signal.SIG_IGN else None


class Command:
  """A command in a subprocess whose stderr lines are read as they come."""

  def __init__(self, *args: str):
    self.proc = subprocess.Popen(
      [sys.executable, "-m", *args],
      cwd=ROOT,
      stdout=subprocess.DEVNULL,
      stderr=subprocess.PIPE,
      text=True,
      preexec_fn=_PREEXEC,
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


def test_ctrl_c_saves_the_current_step_and_the_same_command_resumes_it(trained_run, tmp_path):
  workdir = tmp_path / "run"
  train = Command(*CMD[2:], f"--workdir={workdir}")
  train.freeze_at_first_log(workdir)
  train.signal(signal.SIGINT)
  status, err = train.finish()
  line = _one_error_line(status, 130, err)
  step = _interrupted_step(line)
  assert step % STEPS_PER_EPOCH, "stopped at an evaluation: nothing new to test"
  assert f"checkpoints/{step};" in line and "same command" in line
  assert _finished_checkpoints(workdir) == [step]  # the steps since the start are kept

  out = subprocess.run(
    [*CMD, f"--workdir={workdir}"], cwd=ROOT, capture_output=True, text=True, timeout=600
  )
  assert out.returncode == 0, out.stderr[-2000:]
  assert f"resumed from step {step} of {STEPS}" in out.stderr
  resumed, reference = _validation(workdir), _validation(trained_run)
  assert [r["step"] for r in resumed] == [r["step"] for r in reference]
  for a, b in zip(resumed, reference, strict=True):
    assert abs(a["val_loss"] - b["val_loss"]) < 1e-5, (a, b)
    assert a["val_accuracy"] == b["val_accuracy"]


def test_sigterm_saves_the_current_step_too(tmp_path):
  workdir = tmp_path / "run"
  train = Command(*CMD[2:], f"--workdir={workdir}")
  train.freeze_at_first_log(workdir)
  train.signal(signal.SIGTERM)
  status, err = train.finish()
  step = _interrupted_step(_one_error_line(status, 143, err))
  assert _finished_checkpoints(workdir) == [step]


def test_a_second_signal_stops_at_once_without_saving(tmp_path):
  workdir = tmp_path / "run"
  train = Command(*CMD[2:], f"--workdir={workdir}")
  train.freeze_at_first_log(workdir)
  # Two different signals, both pending when the process continues: handled one after the other.
  train.signal(signal.SIGINT, signal.SIGTERM)
  status, err = train.finish()
  line = _one_error_line(status, 143, err)
  assert "interrupted again: stopped at once, without saving" in line
  assert "Ctrl-C again to stop at once" in err  # the first signal said what a second does
  assert _finished_checkpoints(workdir) == []


@pytest.mark.parametrize(
  "command, ready",
  [
    # while its imports (jax) run, before any of its own code
    (("bugnist_jax.evaluate", "--splits=test"), None),
    # inside the compiled SmoothGrad computation
    (("bugnist_jax.explain", "--method=smoothgrad", "--num_samples=64"), "explaining"),
  ],
)
def test_ctrl_c_ends_explain_and_evaluate_with_one_line(trained_run, tmp_path, command, ready):
  workdir = shutil.copytree(trained_run, tmp_path / "run")
  cmd = Command(*command, f"--workdir={workdir}")
  if ready is None:
    time.sleep(0.5)
  else:
    cmd.wait_for(lambda: any(ready in ln for ln in cmd.lines))
  cmd.signal(signal.SIGINT)
  status, err = cmd.finish()
  assert _one_error_line(status, 130, err) == "error: interrupted"


def test_ctrl_c_ends_a_study_with_one_line(tmp_path):
  config = "--config=configs/shortcut_study.py:smoke"
  study = Command("bugnist_jax.study.shortcut", config, f"--workdir={tmp_path}")
  metrics = tmp_path / "raw" / "metrics.jsonl"
  study.wait_for(metrics.exists)  # training its first model, or just past it
  study.signal(signal.SIGINT)
  status, err = study.finish()
  assert _one_error_line(status, 130, err).startswith("error: interrupted")
