"""Viewer latency: every stage's panels for one volume, as the viewer computes and sends them.

  python -m benchmarks.viewer                      # BugCNN3D 16/32/64/128 on 128x64x64
  taskset -c 0,1 python -m benchmarks.viewer       # on 2 cores of a larger machine

The model has random weights (the speed does not depend on them) and each call shows a new
noise input, so nothing comes from the viewer's caches. Two runners, timed interleaved after a
warm-up (`measure.run_interleaved`; compiling is not in the times):

- `library`: `ViewerData` answering the item and every stage request (the forward pass stage
  by stage, int8 panels, histograms, the blobs);
- `http`: the same requests to a live `ViewerServer` on 127.0.0.1, six at a time as a browser
  sends them, bodies read in full.

The issue's target: all stage panels in under 1 s after warm-up on 2 CPU cores. Prints a table
and writes viewer.json under --out.
"""

import concurrent.futures
import itertools
import json
import os
import pathlib
import tempfile
import urllib.request

import jax.numpy as jnp
import numpy as np
from absl import app, flags
from flax import nnx

from benchmarks.harness import environment
from benchmarks.measure import Runner, run_interleaved
from benchmarks.suites import REAL_MODEL
from bugnist_jax import config_defaults
from bugnist_jax.data.datasets import DataInfo
from bugnist_jax.data.transforms import Normalization
from bugnist_jax.models import get_model
from bugnist_jax.runs import Run
from bugnist_jax.viewer import ViewerData, ViewerServer

TARGET_S = 1.0


def _define_flags() -> None:
  # Only when run as a script: tests import this module beside `benchmarks.run`, whose
  # flags share these names in absl's one global registry.
  flags.DEFINE_list("shape", ["128", "64", "64"], "volume size D,H,W")
  flags.DEFINE_integer("repeats", 10, "timed rounds")
  flags.DEFINE_string("out", "benchmarks/out", "folder for viewer.json")


def viewer_data(shape, model_kw: dict, workdir) -> ViewerData:
  """ViewerData of an untrained BugCNN3D for volumes `shape` (a run that never trained:
  noise inputs need no data and no checkpoint)."""
  model = get_model(
    "bugcnn3d", input_shape=tuple(shape), dtype=jnp.float32, rngs=nnx.Rngs(0), **model_kw
  )
  config = config_defaults.base(model="bugcnn3d")
  classes = tuple(f"class{k}" for k in range(12))
  info = DataInfo(classes, (*shape, 1), Normalization(mean=0.1, std=0.2))
  return ViewerData(Run(workdir, config, info, model, step=0))


def runners(shape, model_kw: dict, workdir) -> tuple[list[Runner], ViewerServer]:
  """The `library` and `http` runners (each call: one new noise item, every stage) and the
  server the `http` runner talks to (call `shutdown()` after)."""
  data = viewer_data(shape, model_kw, workdir)
  server = ViewerServer(data, port=0)
  server.start()
  stages = [s.name for s in data.panels.stages]
  seeds = itertools.count()
  info = {"kind": "viewer", "shape": "x".join(map(str, shape)), "stages": len(stages)}

  def library():
    item = f"noise:{next(seeds)}"
    data.answer("item", {"item": item})
    for stage in stages:
      data.answer("stage", {"item": item, "stage": stage})

  pool = concurrent.futures.ThreadPoolExecutor(6)  # a browser's connections per host

  def fetch(path: str) -> int:
    with urllib.request.urlopen(server.url + path, timeout=600) as response:
      return len(response.read())

  def http():
    item = f"noise:{next(seeds)}"
    paths = [f"api/item?item={item}"] + [f"api/stage?item={item}&stage={s}" for s in stages]
    assert sum(pool.map(fetch, paths)) > 0

  made = [
    Runner(f"viewer {name}", lambda: None, call, 1, info | {"runner": name})
    for name, call in (("library", library), ("http", http))
  ]
  return made, server


def main(argv):
  del argv
  shape = tuple(int(s) for s in flags.FLAGS.shape)
  env = environment(len(os.sched_getaffinity(0)), None)
  print(
    f"viewer {'x'.join(map(str, shape))} {env['device']} cores={env['usable_cores']} "
    f"load={env['load_average']}"
  )
  with tempfile.TemporaryDirectory() as workdir:
    made, server = runners(shape, REAL_MODEL, workdir)
    try:
      results = run_interleaved(made, flags.FLAGS.repeats, warmup=2)
    finally:
      server.shutdown()
  lines = ["| runner | median s | min-max s | target |", "|---|---|---|---|"]
  for r in results:
    times = np.asarray(r["times_s"])
    ok = "met" if np.median(times) < TARGET_S else "MISSED"
    lines.append(
      f"| {r['name']} | {np.median(times):.3f} | {times.min():.3f}-{times.max():.3f} "
      f"| < {TARGET_S:g} s: {ok} |"
    )
  print("\n".join(lines))
  out = pathlib.Path(flags.FLAGS.out)
  out.mkdir(parents=True, exist_ok=True)
  doc = {"environment": env, "shape": shape, "model": REAL_MODEL, "results": results}
  (out / "viewer.json").write_text(json.dumps(doc, indent=1, default=str))
  print(f"wrote {out}/viewer.json")


if __name__ == "__main__":
  _define_flags()
  app.run(main)
