"""PyTorch runners (eager, NCDHW): train step, inference, SmoothGrad loop and Captum."""

import contextlib
from collections.abc import Sequence

import numpy as np
import torch

from benchmarks.jax_cases import NORMALIZE, SIGMA
from benchmarks.measure import Runner
from benchmarks.torch_reference import TorchBugCNN3D, smoothgrad_captum, smoothgrad_loop


def device() -> torch.device:
  return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _sync():
  if torch.cuda.is_available():
    torch.cuda.synchronize()


def _device_peak():
  return torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None


def _autocast(dtype: str):
  if dtype == "float32":
    return contextlib.nullcontext()
  return torch.autocast(device().type, dtype=getattr(torch, dtype))


def _model(shape, model_kw) -> TorchBugCNN3D:
  torch.manual_seed(0)
  return TorchBugCNN3D(input_shape=tuple(shape), **model_kw).to(device())


def _inputs(shape, batch) -> tuple[torch.Tensor, torch.Tensor]:
  """Normalised float32 [B, 1, *shape] (the study feeds floats) and labels [B]."""
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (batch, 1, *shape), dtype=np.uint8)
  x = torch.from_numpy(np.array(NORMALIZE(images)))  # a writable copy
  return x.to(device()), torch.from_numpy(rng.integers(0, 12, batch)).to(device())


def _runner(name, build, items, info) -> Runner:
  holder = {}

  def setup():
    if torch.cuda.is_available():
      torch.cuda.reset_peak_memory_stats()
    holder["call"] = build()

  def call():
    holder["call"]()
    _sync()

  return Runner(name, setup, call, items, info, _device_peak)


def train_runner(shape: Sequence[int], batch: int, *, dtype: str = "float32", model_kw: dict):
  """One Adam step per call: zero_grad, forward, cross-entropy, backward, step."""

  def build():
    model = _model(shape, model_kw)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = _inputs(shape, batch)
    loss_fn = torch.nn.CrossEntropyLoss()

    def call():
      opt.zero_grad(set_to_none=True)
      with _autocast(dtype):
        loss = loss_fn(model(x).float(), y)
      loss.backward()
      opt.step()

    return call

  info = dict(kind="train", framework="torch", variant="eager", dtype=dtype, shape=list(shape))
  return _runner(f"torch eager {dtype}", build, batch, info | {"batch": batch})


def infer_runner(shape: Sequence[int], batch: int, *, dtype: str = "float32", model_kw: dict):
  """One inference batch per call under torch.inference_mode."""

  def build():
    model = _model(shape, model_kw).eval()
    x, _ = _inputs(shape, batch)

    def call():
      with torch.inference_mode(), _autocast(dtype):
        model(x)

    return call

  info = dict(kind="infer", framework="torch", variant="eager", dtype=dtype, shape=list(shape))
  return _runner(f"torch eager {dtype}", build, batch, info | {"batch": batch})


def smoothgrad_runner(
  shape: Sequence[int],
  num_samples: int,
  *,
  method: str,
  batch_size: int | None = None,
  dtype: str = "float32",
  model_kw: dict,
) -> Runner:
  """SmoothGrad of one volume per call: method 'loop' (the study's) or 'captum' (batched)."""

  def build():
    model = _model(shape, model_kw).eval()
    x, _ = _inputs(shape, 1)
    if method == "loop":
      fn = lambda: smoothgrad_loop(model, x, 0, num_samples=num_samples, sigma=SIGMA)
    else:
      fn = lambda: smoothgrad_captum(
        model, x, 0, num_samples=num_samples, sigma=SIGMA, batch_size=batch_size
      )

    def call():
      with _autocast(dtype):
        fn()

    return call

  info = dict(
    kind="smoothgrad",
    framework="torch",
    variant=method,
    dtype=dtype,
    shape=list(shape),
    batch=1,
    num_samples=num_samples,
    sg_batch_size=batch_size if method == "captum" else 1,
  )
  name = f"torch {method}" + (f" bs={batch_size}" if method == "captum" else "") + f" {dtype}"
  return _runner(name, build, 1, info)
