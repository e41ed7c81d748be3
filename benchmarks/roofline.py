"""Analytic FLOPs and bytes of BugCNN3D, measured matmul peak and copy bandwidth, roofline."""

import math
import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np


def _stages(input_shape: Sequence[int], in_channels: int, channels: Sequence[int]):
  """(voxels at the conv's resolution, Cin, Cout) per stage; each stage pools by 2."""
  widths = (in_channels, *channels)
  voxels = math.prod(input_shape)
  for i in range(len(channels)):
    yield voxels, widths[i], widths[i + 1]
    voxels = math.prod(s // 2 ** (i + 1) for s in input_shape)


def model_cost(
  input_shape: Sequence[int],
  *,
  in_channels: int = 1,
  channels: Sequence[int] = (16, 32, 64, 128),
  dense: int = 256,
  num_classes: int = 12,
  kernel: int = 3,
  dtype_bytes: int = 4,
) -> dict[str, float]:
  """Analytic FLOPs and activation bytes per volume of BugCNN3D.

  forward_flops: 2 * k^3 * Cin * Cout per output voxel of each conv, plus the dense layers.
  train_flops: forward + weight gradients (= forward) + input gradients (all but the first conv).
  grad_flops: one input gradient (SmoothGrad's unit): forward + input gradients of every layer.
  *_bytes: the minimum traffic if every stage's input, conv output and pooled output is
  written once and read once (forward), twice that for each backward pass; weights excluded.
  """
  stages = list(_stages(input_shape, in_channels, channels))
  convs = [2 * kernel**3 * cin * cout * v for v, cin, cout in stages]
  flat = math.prod(s // 2 ** len(channels) for s in input_shape) * channels[-1]
  dense_flops = 2 * flat * dense + 2 * dense * num_classes
  forward = sum(convs) + dense_flops
  act = 0
  for v, cin, cout in stages:
    act += v * cin + 2 * v * cout + v * cout // 2 ** len(input_shape)
  act_bytes = act * dtype_bytes
  return {
    "forward_flops": forward,
    "train_flops": 2 * forward + forward - convs[0],
    "grad_flops": 2 * forward,
    "forward_bytes": act_bytes,
    "train_bytes": 3 * act_bytes,
    "grad_bytes": 3 * act_bytes,
  }


def _best_time(fn, *args, repeats: int = 5) -> float:
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return float(np.min(times))  # a peak: the best of the repeats


def measure_peaks(*, matmul_size: int, copy_mb: int, dtypes: Sequence[str] = ("float32",)):
  """Measured float matmul FLOP/s (per dtype) and copy bandwidth (bytes read + written / s)."""
  out = {}
  key = jax.random.key(0)
  for name in dtypes:
    a = jax.random.normal(key, (matmul_size, matmul_size), jnp.dtype(name))
    seconds = _best_time(jax.jit(jnp.matmul), a, a)
    out[f"matmul_flops_{name}"] = 2 * matmul_size**3 / seconds
  x = jnp.zeros((copy_mb * 2**20 // 4,), jnp.float32)
  seconds = _best_time(jax.jit(lambda v: v + 1.0), x)
  out["copy_bytes_per_s"] = 2 * x.nbytes / seconds
  return out


def roofline_fraction(
  flops: float, bytes_: float | None, rate: float, peak_flops: float, bw: float
) -> float:
  """Achieved FLOP/s (flops per item * items/s) over min(peak, intensity * bandwidth), or over
  the peak alone when `bytes_` is None (no minimum traffic known); 0 when the cost is unknown
  (no FLOPs, or zero bytes)."""
  if flops <= 0 or (bytes_ is not None and bytes_ <= 0):
    return 0.0
  attainable = peak_flops if bytes_ is None else min(peak_flops, flops / bytes_ * bw)
  return flops * rate / attainable
