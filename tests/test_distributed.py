"""Several processes: two on this machine (`jax.distributed.initialize` with a 127.0.0.1
coordinator, one CPU device each, gloo collectives) train the same parameters as one process
on the same global batches, each reading only its rows of every global batch.

Not tested here: several machines, GPUs or TPUs, more than one device per process, grain
worker processes (`data.num_workers`) under several processes, and Ctrl-C in a multi-process
run (the stop is agreed at log steps; see `training.loop`)."""

import json
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest
from conftest import ROOT
from flax import nnx
from test_resume import STEPS, _finished_checkpoints

from bugnist_jax.data.pipeline import train_dataset
from bugnist_jax.runs import Run


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_each_process_reads_its_rows_of_the_same_global_batches():
  source = list(range(40))
  kw = {"batch_size": 8, "seed": 3, "augment": "none"}
  whole = [next_ for _, next_ in zip(range(6), iter(train_dataset(source, **kw)), strict=False)]
  for count in (2, 4):
    parts = [
      [
        b
        for _, b in zip(
          range(6),
          iter(train_dataset(source, **kw, process_index=p, process_count=count)),
          strict=False,
        )
      ]
      for p in range(count)
    ]
    for k, batch in enumerate(whole):  # 6 batches: past the first epoch's 5
      rows = [parts[p][k] for p in range(count)]
      assert all(len(r) == 8 // count for r in rows)
      np.testing.assert_array_equal(np.concatenate(rows), batch)


def _params(workdir, step: int) -> list[np.ndarray]:
  run = Run.open(workdir, step=step)
  return [np.asarray(x) for x in jax.tree.leaves(nnx.state(run.model, nnx.Param))]


def _losses(workdir) -> list[float]:
  rows = map(json.loads, (workdir / "metrics.jsonl").read_text().splitlines())
  return [r.get("loss", r.get("val_loss")) for r in rows]


@pytest.mark.slow  # two training processes: minutes of CPU on 2 cores; `make test-all`
def test_two_processes_train_the_parameters_of_one(trained_run, tmp_path):
  """The smoke run in two processes against the one of the session fixture (18 steps, 2
  epochs: the second epoch's shuffle too); every log step and both evaluations compared."""
  two, one = tmp_path / "two", trained_run
  command = [
    sys.executable,
    "-m",
    "bugnist_jax.train",
    "--config=configs/synthetic3d.py:smoke",
    f"--workdir={two}",
    "--distributed",
    f"--coordinator_address=127.0.0.1:{_free_port()}",
    "--num_processes=2",
  ]
  procs = [
    subprocess.Popen(
      [*command, f"--process_id={i}"],
      cwd=ROOT,
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
    )
    for i in range(2)
  ]
  try:
    outs = [p.communicate(timeout=600) for p in procs]
  finally:
    for p in procs:
      p.kill()
  for p, (_, err) in zip(procs, outs, strict=True):
    assert p.returncode == 0, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
  # Process 0 reports (gloo prints a line of its own on stdout in each).
  assert "done: validation accuracy" in outs[0][0] and "done" not in outs[1][0]
  assert _finished_checkpoints(two) == _finished_checkpoints(one)
  np.testing.assert_allclose(_losses(two), _losses(one), rtol=1e-5)
  for a, b in zip(_params(two, STEPS), _params(one, STEPS), strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
