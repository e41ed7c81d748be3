"""The benchmark harness behind `python -m benchmarks.run`: environment, groups of runners,
derived numbers (ratios, roofline)."""

import datetime
import os
import platform

import jax
import numpy as np

from benchmarks.isolation import Spec
from benchmarks.roofline import model_cost, roofline_fraction
from benchmarks.suites import families


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


JAX, TORCH = "benchmarks.jax_cases", "benchmarks.torch_cases"
KINDS = ("train", "infer", "smoothgrad", "epoch", "families")


def groups(suite: dict, kinds, torch_configs, best_torch: dict):
  """Yields (kind, shape, size, [Spec]) with JAX runners first, then torch's.

  `torch_configs`: the torch configurations to time (none: JAX only). Captum runs on
  `best_torch[(shape, dtype)]`, the fastest configuration of the train (else infer) groups of
  that shape, which the caller fills in as groups finish (this generator reads it lazily).
  """
  kw = {"model_kw": suite["model"]}
  for kind in kinds:
    if kind == "families":
      yield from _family_groups(suite)
      continue
    for i, entry in enumerate(suite.get(kind, [])):
      variants = suite["variants"]
      if kind == "epoch":
        shape, n, batch = entry
        specs = [Spec(JAX, "epoch_runner", (shape, n, batch, *v), kw) for v in variants]
        yield (
          kind,
          shape,
          batch,
          specs + [Spec(JAX, "train_runner", (shape, batch, *v), kw) for v in variants],
        )
        continue
      shape, sizes = entry
      for size in sizes:
        compare = i == 0 and suite["compare_at"].get(kind) == size
        extra = suite["compare_variants"] if compare else ()
        for dtype in suite["dtypes"]:
          configs = [c for c in torch_configs if _torch_runs(suite, kind, shape, c)]
          captum = best_torch.get((tuple(shape), dtype), "channels_last")
          rs = _specs(kind, shape, size, (*variants, *extra), dtype, suite, configs, captum, kw)
          yield kind, shape, size, rs


def _listed(where, key) -> bool:
  """Whether `key` is in a suite's list `where` (None: everywhere); lists read as tuples."""
  as_tuple = lambda v: tuple(map(as_tuple, v)) if isinstance(v, list | tuple) else v
  return where is None or as_tuple(key) in {as_tuple(w) for w in where}


def _torch_runs(suite, kind, shape, config) -> bool:
  return config != "compiled" or _listed(suite["torch_compiled"], (kind, shape))


def _family_groups(suite):
  if not suite.get("families"):
    return
  tiny = suite.get("tiny", False)
  for name, shape, model_kw, channels in families(tiny):
    for kind, batch in suite["families"].items():
      kw = {"model_kw": model_kw, "family": name, "in_channels": channels}
      yield kind, shape, batch, [Spec(JAX, f"{kind}_runner", (shape, batch, None, None), kw)]


def _specs(kind, shape, size, variants, dtype, suite, configs, captum, kw):
  kw = kw | {"dtype": dtype}
  if kind in ("train", "infer"):
    rs = [Spec(JAX, f"{kind}_runner", (shape, size, *v), kw) for v in variants]
    if kind == "train" and _listed(suite.get("two_branch_at"), (shape, size)):  # its cost
      two_branch = kw | {"saliency_branch": True}
      rs.append(Spec(JAX, "train_runner", (shape, size, *variants[0]), two_branch))
    return rs + [Spec(TORCH, f"{kind}_runner", (shape, size), kw | {"config": c}) for c in configs]
  rs = []
  for bs in suite["sg_batch_sizes"]:
    bs = min(bs, size)
    for v in variants:
      rs.append(Spec(JAX, "smoothgrad_runner", (shape, size, *v), kw | {"batch_size": bs}))
  first_shape, first_sizes = suite["smoothgrad"][0]
  if suite["sg_consts"] and tuple(shape) == tuple(first_shape) and size == first_sizes[0]:
    bs = min(suite["sg_batch_sizes"][0], size)
    consts = kw | {"batch_size": bs, "weights": "consts"}
    rs.append(Spec(JAX, "smoothgrad_runner", (shape, size, *variants[0]), consts))
  if configs:
    if _listed(suite.get("sg_loop_shapes"), shape):
      rs.append(Spec(TORCH, "smoothgrad_runner", (shape, size), kw | {"method": "loop"}))
    for bs in suite["sg_batch_sizes"]:
      captum_kw = kw | {"method": "captum", "batch_size": min(bs, size), "config": captum}
      rs.append(Spec(TORCH, "smoothgrad_runner", (shape, size), captum_kw))
  return rs


def note_best_torch(best_torch: dict, kind: str, group: list[dict]) -> None:
  """Records the fastest eager torch configuration of a train (or, if none yet, infer) group,
  for Captum. Not the compiled one: Captum's gradients through a `torch.compile`d model ran at
  0.64x of the same on eager channels_last_3d (128x64x64, n=8: 0.394 vs 0.619 maps/s, two idle
  quick suites on 2026-12-01), although the compiled model was the fastest to train."""
  torch_rows = [r for r in group if r["framework"] == "torch" and r["variant"] != "compiled"]
  if not torch_rows or kind not in ("train", "infer"):
    return
  key = (tuple(torch_rows[0]["shape"]), torch_rows[0]["dtype"])
  if kind == "train" or key not in best_torch:
    best_torch[key] = max(torch_rows, key=lambda r: r["rate_median"])["variant"]


def add_derived(results: list[dict], peaks: dict, model_kw: dict) -> None:
  """Adds FLOP/s, roofline fraction and the ratios to the torch peers of each group, in place.

  FLOPs are BugCNN3D's analytic count; other families and the two-branch rows use XLA's cost
  analysis of the compiled call (per item). train/infer ratios: `best` (the fastest torch
  configuration of the group) and `eager` (NCDHW, what the studies ran); SmoothGrad: the
  study's `loop` and Captum. The two-branch rows have no torch peers; their `plain` ratio is
  over the one-branch step of the same variant and group (below 1: what the branch costs).
  """
  for r in results:
    flops, bytes_ = _cost(r, model_kw)  # bytes None: XLA's count, compute roof only
    peak = peaks.get(f"matmul_flops_{r['dtype']}", peaks["matmul_flops_float32"])
    r["flops_per_item"], r["bytes_per_item"] = flops, bytes_
    r["gflops_per_s"] = flops * r["rate_median"] / 1e9
    r["roofline"] = roofline_fraction(
      flops, bytes_, r["rate_median"], peak, peaks["copy_bytes_per_s"]
    )
  key = lambda r: (
    r["kind"],
    r.get("family", "bugcnn3d"),
    r.get("saliency_branch", False),  # the two-branch rows have no torch peers
    tuple(r["shape"]),
    r["batch"],
    r.get("num_samples"),
    r["dtype"],
  )
  for r in results:
    peers = [p for p in results if key(p) == key(r) and p["framework"] == "torch"]
    if r["kind"] != "smoothgrad" and peers:
      best = max(peers, key=lambda p: p["rate_median"])
      r["ratio_vs_best"], r["best_torch"] = r["rate_median"] / best["rate_median"], best["name"]
    if r.get("saliency_branch"):  # the branch's cost: over the plain step of the same group
      plain = [
        p
        for p in results
        if key(p)[:2] + key(p)[3:] == key(r)[:2] + key(r)[3:]
        and p["framework"] == "jax"
        and not p.get("saliency_branch")
        and p["variant"] == r["variant"].removesuffix(" two-branch")
      ]
      if plain:
        r["ratio_vs_plain"] = r["rate_median"] / plain[0]["rate_median"]
    for p in peers:
      if r["kind"] == "smoothgrad":
        label = f"captum_bs{p['sg_batch_size']}" if p["variant"] == "captum" else p["variant"]
      elif p["variant"] == "eager":
        label = "eager"
      else:
        continue
      r[f"ratio_vs_{label}"] = r["rate_median"] / p["rate_median"]


def _cost(r: dict, model_kw: dict) -> tuple[float, float]:
  """(FLOPs, bytes) of one item of result `r`; bytes None where only XLA's cost analysis is
  known. Its `bytes accessed` sums every operand of every fusion, far above the minimum
  traffic, so it would put the memory roof below what the run achieves (roofline > 100%)."""
  if r.get("family", "bugcnn3d") != "bugcnn3d" or r.get("saliency_branch", False):
    return r.get("xla_flops", 0.0) / r["items"], None
  dtype_bytes = 2 if r["dtype"] == "bfloat16" else 4
  cost = model_cost(r["shape"], dtype_bytes=dtype_bytes, **model_kw)
  unit = {"train": "train", "epoch": "train", "infer": "forward", "smoothgrad": "grad"}[r["kind"]]
  flops, bytes_ = cost[f"{unit}_flops"], cost[f"{unit}_bytes"]
  if r["kind"] == "smoothgrad":  # useful work: num_samples gradients per map
    flops, bytes_ = flops * r["num_samples"], bytes_ * r["num_samples"]
  return flops, bytes_


def _jsonable(v):
  if isinstance(v, np.generic):
    return v.item()
  return str(v)
