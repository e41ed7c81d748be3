"""The benchmark harness behind `python -m benchmarks.run`: environment, groups of runners,
derived numbers (ratios, roofline)."""

import datetime
import os
import platform

import jax
import numpy as np

from benchmarks import jax_cases
from benchmarks.roofline import model_cost, roofline_fraction


def torch_module():
  """benchmarks.torch_cases, or None when torch is not installed."""
  try:
    from benchmarks import torch_cases
  except ImportError:
    return None
  return torch_cases


def environment(threads: int, torch_cases) -> dict:
  dev = jax.devices()[0]
  env = {
    "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    "device": f"{dev.platform}: {getattr(dev, 'device_kind', '')}",
    "cpu": platform.processor() or platform.machine(),
    "usable_cores": len(os.sched_getaffinity(0)),
    "load_average": os.getloadavg(),
    "threads": threads,
    "jax": jax.__version__,
    "python": platform.python_version(),
    **{k: os.environ.get(k, "") for k in ("XLA_FLAGS", "GLIBC_TUNABLES", "OMP_NUM_THREADS")},
  }
  import flax
  import optax

  env |= {"flax": flax.__version__, "optax": optax.__version__}
  if torch_cases is not None:
    import torch

    env["torch"] = torch.__version__
    env["torch_device"] = str(torch_cases.device())
    try:
      import captum

      env["captum"] = captum.__version__
    except ImportError:
      env["captum"] = None
  return env


def groups(suite: dict, kinds, tc):
  """Yields (kind, shape, size, runners) with JAX runners first, then torch's."""
  kw = {"model_kw": suite["model"]}
  for kind in kinds:
    for i, entry in enumerate(suite.get(kind, [])):
      variants = suite["variants"]
      if kind == "epoch":
        shape, n, batch = entry
        yield (
          kind,
          shape,
          batch,
          [jax_cases.epoch_runner(shape, n, batch, *v, **kw) for v in variants]
          + [jax_cases.train_runner(shape, batch, *v, **kw) for v in variants],
        )
        continue
      shape, sizes = entry
      for size in sizes:
        compare = i == 0 and suite["compare_at"].get(kind) == size
        extra = suite["compare_variants"] if compare else ()
        for dtype in suite["dtypes"]:
          rs = _runners(kind, shape, size, (*variants, *extra), dtype, suite, tc, kw)
          yield kind, shape, size, rs


def _runners(kind, shape, size, variants, dtype, suite, tc, kw):
  if kind in ("train", "infer"):
    jax_fn = getattr(jax_cases, f"{kind}_runner")
    rs = [jax_fn(shape, size, *v, dtype=dtype, **kw) for v in variants]
    if tc is not None:
      rs.append(getattr(tc, f"{kind}_runner")(shape, size, dtype=dtype, **kw))
    return rs
  rs = []
  for bs in suite["sg_batch_sizes"]:
    bs = min(bs, size)
    for v in variants:
      rs.append(jax_cases.smoothgrad_runner(shape, size, *v, batch_size=bs, dtype=dtype, **kw))
  first_shape, first_sizes = suite["smoothgrad"][0]
  if suite["sg_consts"] and tuple(shape) == tuple(first_shape) and size == first_sizes[0]:
    bs = min(suite["sg_batch_sizes"][0], size)
    rs.append(
      jax_cases.smoothgrad_runner(
        shape, size, *variants[0], batch_size=bs, dtype=dtype, weights="consts", **kw
      )
    )
  if tc is not None:
    rs.append(tc.smoothgrad_runner(shape, size, method="loop", dtype=dtype, **kw))
    for bs in suite["sg_batch_sizes"]:
      bs = min(bs, size)
      rs.append(
        tc.smoothgrad_runner(shape, size, method="captum", batch_size=bs, dtype=dtype, **kw)
      )
  return rs


def add_derived(results: list[dict], peaks: dict, model_kw: dict) -> None:
  """Adds FLOP/s, roofline fraction and the ratio to the torch peers of each group, in place."""
  for r in results:
    dtype_bytes = 2 if r["dtype"] == "bfloat16" else 4
    cost = model_cost(r["shape"], dtype_bytes=dtype_bytes, **model_kw)
    unit = {"train": "train", "epoch": "train", "infer": "forward", "smoothgrad": "grad"}[r["kind"]]
    flops, bytes_ = cost[f"{unit}_flops"], cost[f"{unit}_bytes"]
    if r["kind"] == "smoothgrad":  # useful work: num_samples gradients per map
      flops, bytes_ = flops * r["num_samples"], bytes_ * r["num_samples"]
    peak = peaks.get(f"matmul_flops_{r['dtype']}", peaks["matmul_flops_float32"])
    r["flops_per_item"], r["bytes_per_item"] = flops, bytes_
    r["gflops_per_s"] = flops * r["rate_median"] / 1e9
    r["roofline"] = roofline_fraction(
      flops, bytes_, r["rate_median"], peak, peaks["copy_bytes_per_s"]
    )
  key = lambda r: (r["kind"], tuple(r["shape"]), r["batch"], r.get("num_samples"), r["dtype"])
  for r in results:
    peers = [p for p in results if key(p) == key(r) and p["framework"] == "torch"]
    for p in peers:
      label = p["variant"] if r["kind"] == "smoothgrad" else "torch"
      if p["variant"] == "captum":
        label = f"captum_bs{p['sg_batch_size']}"
      r[f"ratio_vs_{label}"] = r["rate_median"] / p["rate_median"]


def _jsonable(v):
  if isinstance(v, np.generic):
    return v.item()
  return str(v)
