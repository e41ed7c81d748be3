"""Per-stage inference time of BugCNN3D, JAX variants beside the torch configurations.

  python -m benchmarks.layers --shape=128,64,64 --batch=8 --repeats=5

Each JAX stage is jitted alone (`compile.jit`) on the previous stage's real output; each torch
stage (conv + ReLU + pool, then the dense layers) runs on its input in the configuration's
memory format, compiled per stage for 'compiled'. Rounds alternate frameworks; times are
medians in ms, with the load average beside them.
"""

import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from flax import nnx

from benchmarks.jax_cases import NORMALIZE, _data, _model
from benchmarks.suites import REAL_MODEL
from bugnist_jax import compile

_SHAPE = flags.DEFINE_list("shape", ["128", "64", "64"], "volume D,H,W")
_BATCH = flags.DEFINE_integer("batch", 8, "volumes per call")
_REPEATS = flags.DEFINE_integer("repeats", 5, "timed rounds")
_VARIANTS = flags.DEFINE_list("variants", ["planes/argmax", "xla/argmax"], "JAX conv/pool")
_TORCH = flags.DEFINE_list("torch_configs", ["eager", "channels_last", "compiled"], "torch")


def jax_stages(shape, batch: int, conv_impl: str, pool_impl: str) -> dict:
  """{stage: call() that runs that stage once on its real input and waits}."""
  model = _model(shape, REAL_MODEL, conv_impl, pool_impl, "float32")
  graphdef, state = nnx.split(model)
  y = jnp.asarray(NORMALIZE(_data(shape, batch)[0]))
  calls, prev = {}, None
  for name in model.layer_names:
    fn = compile.jit(
      lambda s, x, prev=prev, name=name: nnx.merge(graphdef, s).forward(x, prev, name)[0]
    )
    compiled, x = fn.lower(state, y).compile(), y
    calls[name] = lambda c=compiled, x=x: jax.block_until_ready(c(state, x))
    y, prev = compiled(state, x), name
  return calls


def torch_stages(shape, batch: int, config: str) -> dict:
  import torch

  from benchmarks import torch_cases

  model = torch_cases._model(shape, REAL_MODEL, "channels_last" if config != "eager" else "eager")
  x, _ = torch_cases._inputs(shape, batch, config)
  mods = list(model.eval().features)
  parts = {f"block{i + 1}": torch.nn.Sequential(*mods[3 * i : 3 * i + 3]) for i in range(4)}
  parts["dense"] = lambda v: model.logits(torch.relu(model.dense1(v.flatten(1))))
  calls = {}
  with torch.inference_mode():
    for name, part in parts.items():
      fn = torch.compile(part) if config == "compiled" else part
      fn(x)  # compiles for 'compiled'
      calls[name] = lambda fn=fn, x=x: fn(x)
      x = fn(x)
  return calls


def main(argv):
  del argv
  shape, batch = tuple(int(s) for s in _SHAPE.value), _BATCH.value
  import torch

  torch.set_num_threads(len(os.sched_getaffinity(0)))
  runs = {f"jax {v}": jax_stages(shape, batch, *v.split("/")) for v in _VARIANTS.value}
  runs |= {f"torch {c}": torch_stages(shape, batch, c) for c in _TORCH.value}
  times = {(run, stage): [] for run, calls in runs.items() for stage in calls}
  loads = []
  for _ in range(_REPEATS.value):
    loads.append(os.getloadavg()[0])
    for run, calls in runs.items():
      with torch.inference_mode():
        for stage, call in calls.items():
          start = time.perf_counter()
          call()
          times[run, stage].append(time.perf_counter() - start)
  print(
    f"{'x'.join(map(str, shape))} batch {batch}, median ms of {_REPEATS.value} rounds, "
    f"load {min(loads):.1f}-{max(loads):.1f}"
  )
  for run, calls in runs.items():
    parts = {s: 1e3 * float(np.median(times[run, s])) for s in calls}
    row = "  ".join(f"{s} {ms:7.1f}" for s, ms in parts.items())
    print(f"{run:<22} total {sum(parts.values()):7.1f}  {row}")


if __name__ == "__main__":
  app.run(main)
