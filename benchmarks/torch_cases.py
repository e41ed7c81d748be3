"""PyTorch runners: train step, inference, SmoothGrad loop and Captum, in three configurations.

`CONFIGS`: 'eager' (NCDHW, what the studies' code does), 'channels_last' (eager, model and
input in `torch.channels_last_3d`, which oneDNN prefers), 'compiled' (`torch.compile` with
inductor, channels_last_3d). A compiled runner's first call is timed apart as its compile time.
"""

import contextlib
import functools
import time
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


CONFIGS = ("eager", "channels_last", "compiled")
LABELS = {
  "eager": "eager ncdhw",
  "channels_last": "eager channels_last_3d",
  "compiled": "compile channels_last_3d",
}


def _check_config(config: str) -> None:
  if config not in CONFIGS:
    raise ValueError(f"config: expected one of {', '.join(CONFIGS)}, got {config!r}")


def _model(shape, model_kw, config="eager", backend="inductor") -> torch.nn.Module:
  """The reference model in `config`'s memory format, compiled for 'compiled'."""
  torch.manual_seed(0)
  model = TorchBugCNN3D(input_shape=tuple(shape), **model_kw).to(device())
  if config == "eager":
    return model
  model = model.to(memory_format=torch.channels_last_3d)
  return torch.compile(model, backend=backend) if config == "compiled" else model


def _inputs(shape, batch, config="eager") -> tuple[torch.Tensor, torch.Tensor]:
  """Normalised float32 [B, 1, *shape] (the study feeds floats) and labels [B]."""
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (batch, 1, *shape), dtype=np.uint8)
  x = torch.from_numpy(np.array(NORMALIZE(images))).to(device())  # a writable copy
  if config != "eager":
    x = x.contiguous(memory_format=torch.channels_last_3d)
  return x, torch.from_numpy(rng.integers(0, 12, batch)).to(device())


def _runner(name, build, items, info) -> Runner:
  """A Runner whose setup builds the call and runs it twice: the first call's excess over the
  second is the compile time (torch.compile compiles on the first call; eager: ~0)."""
  holder = {}

  def call():
    holder["call"]()
    _sync()

  def setup() -> float:
    if torch.cuda.is_available():
      torch.cuda.reset_peak_memory_stats()
    holder["call"] = build()
    times = []
    for _ in range(2):
      start = time.perf_counter()
      call()
      times.append(time.perf_counter() - start)
    return max(times[0] - times[1], 0.0)

  return Runner(name, setup, call, items, info, _device_peak)


def _info(kind, config, dtype, shape, batch) -> dict:
  _check_config(config)
  return dict(
    kind=kind, framework="torch", variant=config, dtype=dtype, shape=list(shape), batch=batch
  )


def _batch_runner(
  kind: str,
  shape: Sequence[int],
  batch: int,
  *,
  config: str = "eager",
  dtype: str = "float32",
  model_kw: dict,
  backend: str = "inductor",
) -> Runner:
  """kind 'train': one Adam step per call (zero_grad, forward, cross-entropy, backward, step;
  the optimizer eager); 'infer': one inference batch per call under torch.inference_mode."""

  def build():
    model = _model(shape, model_kw, config, backend)
    x, y = _inputs(shape, batch, config)
    if kind == "infer":
      model.eval()

      def infer():
        with torch.inference_mode(), _autocast(dtype):
          model(x)

      return infer
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def train():
      opt.zero_grad(set_to_none=True)
      with _autocast(dtype):
        loss = loss_fn(model(x).float(), y)
      loss.backward()
      opt.step()

    return train

  info = _info(kind, config, dtype, shape, batch)
  return _runner(f"torch {LABELS[config]} {dtype}", build, batch, info)


train_runner = functools.partial(_batch_runner, "train")
infer_runner = functools.partial(_batch_runner, "infer")


def smoothgrad_runner(
  shape: Sequence[int],
  num_samples: int,
  *,
  method: str,
  batch_size: int | None = None,
  config: str = "eager",
  dtype: str = "float32",
  model_kw: dict,
  backend: str = "inductor",
) -> Runner:
  """SmoothGrad of one volume per call: method 'loop' (the study's) or 'captum' (batched),
  on the model in `config` (the study's loop is eager NCDHW)."""

  def build():
    model = _model(shape, model_kw, config, backend).eval()
    x, _ = _inputs(shape, 1, config)
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

  info = _info("smoothgrad", config, dtype, shape, 1) | {
    "variant": method,
    "torch_config": config,
    "num_samples": num_samples,
    "sg_batch_size": batch_size if method == "captum" else 1,
  }
  bs = f" bs={batch_size}" if method == "captum" else ""
  return _runner(f"torch {method}{bs} {LABELS[config]} {dtype}", build, 1, info)
