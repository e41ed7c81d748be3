"""JAX vs PyTorch benchmark: `python -m benchmarks.run --suite=quick` (CPU), `--suite=full` (GPU).

Every group (one kind of work at one size and batch) builds its JAX and torch runners, warms
them up, then times them in interleaved rounds so machine noise hits all alike; by default each
runner lives in its own process (`--isolation`, see benchmarks/isolation.py). Torch runs in
three configurations (eager NCDHW, eager channels_last_3d, torch.compile + channels_last_3d;
`--torch_configs`), Captum on the fastest of them. Prints a table and writes results.json,
results.md and scaling.png under --out.
"""

import json
import os
import pathlib
import sys
import time

import jax
from absl import app, flags

from benchmarks import report
from benchmarks.harness import (
  KINDS,
  _jsonable,
  add_derived,
  environment,
  groups,
  note_best_torch,
  torch_module,
)
from benchmarks.isolation import ISOLATIONS, Workers, run_group
from benchmarks.roofline import measure_peaks
from benchmarks.suites import SUITES, shrink
from bugnist_jax import progress
from bugnist_jax.progress import Progress

_SUITE = flags.DEFINE_enum("suite", "quick", list(SUITES), "which sizes to run")
_OUT = flags.DEFINE_string("out", "benchmarks/out", "folder for results.json/.md, scaling.png")
_REPEATS = flags.DEFINE_integer("repeats", None, "timed rounds (default: the suite's)")
_THREADS = flags.DEFINE_integer("threads", None, "torch CPU threads (default: usable cores)")
_ONLY = flags.DEFINE_list("only", None, f"kinds to run: {', '.join(KINDS)}")
_TORCH = flags.DEFINE_list(
  "torch_configs", ["eager", "channels_last", "compiled"], "torch configurations; empty: none"
)
_ISOLATION = flags.DEFINE_enum(
  "isolation", "process", list(ISOLATIONS), "each runner in its own process, or all in this one"
)
_TINY = flags.DEFINE_bool("tiny", False, "the suite's code paths on tiny sizes (tests, CPU)")
_REQUIRE = flags.DEFINE_bool(
  "require_accelerator", True, "refuse a GPU/TPU suite (full) on a CPU-only machine"
)


class BenchmarkError(Exception):
  """A bad flag or environment: printed as one line, exit status 2."""


def run_suite(
  name: str,
  out: pathlib.Path,
  *,
  repeats: int | None = None,
  threads: int | None = None,
  only=None,
  torch_configs=("eager", "channels_last", "compiled"),
  isolation: str = "process",
  tiny: bool = False,
  require_accelerator: bool = True,
) -> dict:
  """Runs suite `name` and writes results.json/.md and scaling.png under `out`; returns the doc."""
  start = time.perf_counter()
  suite = SUITES[name]
  gpu = jax.devices()[0].platform != "cpu"
  if suite.get("accelerator") and require_accelerator and not gpu:
    raise BenchmarkError(
      f"--suite={name}: meant for a GPU/TPU, found only {jax.devices()[0].platform} "
      "(--norequire_accelerator runs it anyway; --tiny shrinks it)"
    )
  _check(only, KINDS, "--only")
  tc = torch_module() if torch_configs else None
  torch_configs = tuple(torch_configs) if tc is not None else ()
  if tc is not None:
    _check(torch_configs, tc.CONFIGS, "--torch_configs")
  suite = shrink(suite) if tiny else suite
  threads = threads or len(os.sched_getaffinity(0))
  if tc is not None:
    import torch

    torch.set_num_threads(threads)
  env = environment(threads, tc) | {"isolation": isolation, "torch_configs": list(torch_configs)}
  # bf16 on a CPU only when asked for (it has no fast bf16 here); float32 otherwise.
  dtypes = suite["dtypes"] if gpu or not require_accelerator else ("float32",)
  suite = suite | {"dtypes": dtypes}
  print(
    f"suite={name}{' (tiny)' * tiny} {env['device']} threads={threads} "
    f"isolation={isolation} load={env['load_average']}",
    flush=True,
  )
  peaks = measure_peaks(**suite["peaks"], dtypes=dtypes)
  print("peaks: " + ", ".join(f"{k}={v / 1e9:.1f}G" for k, v in peaks.items()))
  with Workers(threads) as workers:
    results, best_torch = _run_groups(
      suite, only, torch_configs, repeats, isolation, workers, peaks
    )
  out.mkdir(parents=True, exist_ok=True)
  moonshots = report.moonshots(results, suite["moonshot"])
  doc = {
    "suite": name,
    "tiny": tiny,
    "environment": env,
    "peaks": peaks,
    "results": results,
    "moonshot": moonshots,
    "captum_config": {"x".join(map(str, k[0])) + f" {k[1]}": v for k, v in best_torch.items()},
    "wall_s": time.perf_counter() - start,  # the whole suite, imports after jax's excluded
  }
  (out / "results.json").write_text(json.dumps(doc, indent=1, default=_jsonable))
  table = report.markdown(results) + report.moonshot_markdown(moonshots)
  (out / "results.md").write_text(table)
  report.plot(results, out / "scaling.png")
  print(table)
  print(f"wrote {out}/results.json, results.md, scaling.png ({doc['wall_s']:.0f} s)")
  return doc


def _run_groups(suite, only, torch_configs, repeats, isolation, workers, peaks):
  """Every group of the suite, in order; returns (results, best torch configuration per
  (shape, dtype))."""
  results, best_torch = [], {}
  # A bar of the groups on stderr (plain lines in a log); the results go to stdout above it.
  with Progress(None, "benchmark", unit="group") as bar:
    for kind, shape, size, specs in groups(suite, only or KINDS, torch_configs, best_torch):
      load = os.getloadavg()[0]
      progress.write(f"-- {kind} {'x'.join(map(str, shape))} {size} (load {load:.1f})", sys.stdout)
      rounds = repeats or suite["repeats"]
      start = time.perf_counter()
      group = run_group(
        specs, rounds, isolation=isolation, threads=workers.threads, workers=workers
      )
      load, wall = os.getloadavg(), time.perf_counter() - start
      for r in group:  # epoch groups also time plain train steps
        r["group"], r["load_average"], r["group_wall_s"] = kind, load, wall
      note_best_torch(best_torch, kind, group)
      add_derived(group, peaks, suite["model"])
      for r in group:
        progress.write("   " + report.line(r), sys.stdout)
      progress.write(f"   ({wall:.0f} s: build, compile, warm-up and {rounds} rounds)", sys.stdout)
      results += group
      bar.update()
  return results, best_torch


def _check(values, valid, flag) -> None:
  bad = sorted(set(values or ()) - set(valid))
  if bad:
    raise BenchmarkError(f"{flag}: unknown {bad[0]!r}; valid: {', '.join(valid)}")


def main(argv):
  if len(argv) > 1:
    _fail(f"unexpected arguments: {' '.join(argv[1:])}")
  try:
    run_suite(
      _SUITE.value,
      pathlib.Path(_OUT.value),
      repeats=_REPEATS.value,
      threads=_THREADS.value,
      only=_ONLY.value,
      torch_configs=[c for c in _TORCH.value if c],
      isolation=_ISOLATION.value,
      tiny=_TINY.value,
      require_accelerator=_REQUIRE.value,
    )
  except BenchmarkError as e:
    _fail(str(e))


def _fail(message: str) -> None:
  # bugnist_jax.cli.fail's format; not imported: cli needs ml_collections, which the GPU
  # image does not have.
  print(f"error: {message}", file=sys.stderr, flush=True)
  sys.exit(2)


if __name__ == "__main__":
  app.run(main)
