"""Feature visualisation speed: channels of one stage maximised, all in one compiled program.

  python -m benchmarks.featurevis                 # the issue's sizes (below), batch 16 and 64
  python -m benchmarks.featurevis --tiny          # seconds: tiny models, what the test runs
  taskset -c 0,1 python -m benchmarks.featurevis  # on 2 cores of a larger machine

Cases: 64 channels x 256 steps of the 2D CNN (arch 3) at 128x128 (stage conv4) and of BugCNN3D
16/32/64/128 at 64x32x32 (stage block3); Fourier images, the default transforms; random
weights (the speed does not depend on them). One call visualises every channel, `batch`
channels at a time (`featurevis.visualize`'s chunking, one program); compiling is not in the
times (`measure.run_interleaved`, after a warm-up). Prints a table and writes featurevis.json
under --out. Standalone (as `benchmarks/viewer.py`): the throughput suites are not touched.
"""

import json
import os
import pathlib
import time
from collections.abc import Sequence

import jax
import numpy as np
from absl import app, flags
from flax import nnx

from benchmarks.harness import environment
from benchmarks.measure import Runner, run_interleaved
from benchmarks.suites import REAL_MODEL
from bugnist_jax import compile, featurevis
from bugnist_jax.models import get_model
from bugnist_jax.models.adapters import stage_fn

# (model, model fields, spatial shape, input channels, stage, channels, steps)
CASES = (
  ("cnn2d", {"arch": 3}, (128, 128), 3, "conv4", 64, 256),
  ("bugcnn3d", REAL_MODEL, (64, 32, 32), 1, "block3", 64, 256),
)
TINY = (
  ("cnn2d", {"arch": 3, "dense": 8}, (64, 64), 3, "conv2", 4, 4),
  ("bugcnn3d", {"channels": (4, 4, 8, 8), "dense": 8}, (16, 16, 16), 1, "block2", 4, 4),
)


def _define_flags() -> None:
  # Only when run as a script: tests import this module beside `benchmarks.run`, whose
  # flags share these names in absl's one global registry.
  flags.DEFINE_bool("tiny", False, "tiny models and sizes (seconds)")
  flags.DEFINE_list("batch", ["16", "64"], "channels optimised at once")
  flags.DEFINE_integer("repeats", 3, "timed rounds")
  flags.DEFINE_string("out", "benchmarks/out", "folder for featurevis.json")


def runner(
  model: str,
  model_kw: dict,
  shape: Sequence[int],
  in_channels: int,
  layer: str,
  channels: int,
  steps: int,
  batch: int,
) -> Runner:
  """One call maximises `channels` channels of `layer` of `model` on inputs [*shape,
  in_channels] for `steps` steps, `batch` at a time; `items` is channels (rates: channels/s)."""
  holder = {}
  info = {"kind": "featurevis", "model": model, "layer": layer, "shape": list(shape)}
  info |= {"channels": channels, "steps": steps, "batch": batch}

  def setup():
    net = get_model(
      model, input_shape=tuple(shape), in_channels=in_channels, rngs=nnx.Rngs(0), **model_kw
    )
    features = stage_fn(net, None, layer)
    run = lambda key: (
      featurevis.visualize(
        features,
        (*shape, in_channels),
        range(channels),
        key=key,
        steps=steps,
        batch_size=batch,
        value_range=(-2.0, 3.0),
      ).images
    )
    key = jax.random.key(0)
    start = time.perf_counter()
    compiled = compile.jit(run).lower(key).compile()
    holder["call"] = lambda: jax.block_until_ready(compiled(key))
    return time.perf_counter() - start

  name = f"featurevis {model} {'x'.join(map(str, shape))} {layer} b={batch}"
  return Runner(name, setup, lambda: holder["call"](), channels, info)


def table(results: list[dict]) -> str:
  """A markdown table: seconds per call (all channels) and channels per second."""
  lines = ["| case | channels x steps | s/call median (min-max) | channels/s | compile s |"]
  lines.append("|---|---|---|---|---|")
  for r in results:
    t = np.asarray(r["times_s"])
    lines.append(
      f"| {r['name']} | {r['channels']} x {r['steps']} | {np.median(t):.2f} "
      f"({t.min():.2f}-{t.max():.2f}) | {r['rate_median']:.2f} | {r['compile_s']:.1f} |"
    )
  return "\n".join(lines)


def main(argv):
  del argv
  env = environment(len(os.sched_getaffinity(0)), None)
  print(f"featurevis {env['device']} cores={env['usable_cores']} load={env['load_average']}")
  cases = TINY if flags.FLAGS.tiny else CASES
  made = [runner(*case, int(b)) for case in cases for b in flags.FLAGS.batch]
  results = run_interleaved(made, flags.FLAGS.repeats, warmup=1)
  print(table(results))
  out = pathlib.Path(flags.FLAGS.out)
  out.mkdir(parents=True, exist_ok=True)
  doc = {"environment": env, "results": results}
  (out / "featurevis.json").write_text(json.dumps(doc, indent=1, default=str))
  print(f"wrote {out}/featurevis.json")


if __name__ == "__main__":
  _define_flags()
  app.run(main)
