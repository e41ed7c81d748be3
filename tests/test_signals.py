"""Ctrl-C and SIGTERM, sent as real signals: the first asks training to stop (it saves and says
how to resume: tests/test_resume.py), a second one stops at once, and every other command ends
with one line, never a traceback."""

import shutil
import signal
import subprocess
import sys
import time

import pytest
from test_resume import _PREEXEC, ROOT, Command, _one_error_line

# The loop's StopRequest in a process of its own (no jax: a fraction of a second, where a training
# run takes a dozen): the first signal is a request, the second one ends it at once.
_STOP_SCRIPT = """
import os, signal, sys, time
from bugnist_jax.interrupts import StopRequest
first, second = (getattr(signal, name, None) for name in sys.argv[1:])  # "-": none
before = signal.getsignal(signal.SIGINT)
with StopRequest() as stop:
  os.kill(os.getpid(), first)
  time.sleep(0.05)  # the handler runs in the main thread between two bytecodes
  print("requested", stop.requested, stop.status, flush=True)
  if second is not None:
    os.kill(os.getpid(), second)
    time.sleep(5)
    print("not stopped", flush=True)
print("restored", signal.getsignal(signal.SIGINT) is before, flush=True)
"""


@pytest.mark.parametrize(
  "signals, status, stdout, last",
  [
    (("SIGTERM", "-"), 0, "requested True 143\nrestored True\n", "stopping: saving"),
    (("SIGINT", "SIGTERM"), 143, "requested True 130\n", "error: interrupted again: stopped"),
    (("SIGTERM", "SIGINT"), 130, "requested True 143\n", "error: interrupted again: stopped"),
  ],
)
def test_the_first_signal_asks_to_stop_and_a_second_stops_at_once(signals, status, stdout, last):
  out = subprocess.run(
    [sys.executable, "-c", _STOP_SCRIPT, *signals],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=60,
    preexec_fn=_PREEXEC,
  )
  assert (out.returncode, out.stdout) == (status, stdout), out.stderr
  lines = out.stderr.strip().splitlines()
  assert "Traceback" not in out.stderr and lines[-1].startswith(last), out.stderr
  assert "Ctrl-C again to stop at once, without saving" in lines[0]


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
