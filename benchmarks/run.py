"""JAX vs PyTorch benchmark of BugCNN3D: `python -m benchmarks.run --suite=quick`.

Every group (one kind of work at one size and batch) builds its JAX and torch runners, warms
them up, then times them in interleaved rounds so machine noise hits all alike. Prints a table
and writes results.json, results.md and scaling.png under --out.
"""

import json
import os
import pathlib

import jax
from absl import app, flags

from benchmarks import report
from benchmarks.harness import _jsonable, add_derived, environment, groups, torch_module
from benchmarks.measure import run_interleaved
from benchmarks.roofline import measure_peaks
from benchmarks.suites import SUITES

FLAGS = flags.DEFINE_enum("suite", "quick", list(SUITES), "which sizes to run")
_OUT = flags.DEFINE_string("out", "benchmarks/out", "folder for results.json/.md, scaling.png")
_REPEATS = flags.DEFINE_integer("repeats", None, "timed rounds (default: the suite's)")
_THREADS = flags.DEFINE_integer("threads", None, "torch CPU threads (default: usable cores)")
_ONLY = flags.DEFINE_list("only", None, "kinds to run: train, infer, smoothgrad, epoch")
_TORCH = flags.DEFINE_bool("torch", True, "also run the PyTorch reference (if installed)")


def main(argv):
  del argv
  suite = SUITES[FLAGS.value]
  tc = torch_module() if _TORCH.value else None
  threads = _THREADS.value or len(os.sched_getaffinity(0))
  if tc is not None:
    import torch

    torch.set_num_threads(threads)
  env = environment(threads, tc)
  gpu = jax.devices()[0].platform != "cpu"
  dtypes = suite["dtypes"] if gpu else ("float32",)
  suite = suite | {"dtypes": dtypes}
  print(f"suite={FLAGS.value} {env['device']} threads={threads} load={env['load_average']}")
  peaks = measure_peaks(**suite["peaks"], dtypes=dtypes)
  print("peaks: " + ", ".join(f"{k}={v / 1e9:.1f}G" for k, v in peaks.items()))
  kinds = _ONLY.value or ["train", "infer", "smoothgrad", "epoch"]
  results = []
  for kind, shape, size, runners in groups(suite, kinds, tc):
    print(f"-- {kind} {'x'.join(map(str, shape))} {size}", flush=True)
    group = run_interleaved(runners, _REPEATS.value or suite["repeats"])
    for r in group:
      r["group"] = kind  # the epoch group also times plain train steps, for comparison
    add_derived(group, peaks, suite["model"])
    for r in group:
      print("   " + report.line(r), flush=True)
    results += group
  out = pathlib.Path(_OUT.value)
  out.mkdir(parents=True, exist_ok=True)
  doc = {"suite": FLAGS.value, "environment": env, "peaks": peaks, "results": results}
  (out / "results.json").write_text(json.dumps(doc, indent=1, default=_jsonable))
  table = report.markdown(results)
  (out / "results.md").write_text(table)
  report.plot(results, out / "scaling.png")
  print(table)
  print(f"wrote {out}/results.json, results.md, scaling.png")


if __name__ == "__main__":
  app.run(main)
