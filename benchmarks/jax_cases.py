"""JAX runners: train step, inference, SmoothGrad, device-resident epoch.

BugCNN3D by default; `family` names any other entry of `models.MODELS` (train and infer), whose
variant is its own defaults (`conv_impl`/`pool_impl` None: not passed).

Weights are jit arguments (split state, merged inside), as in training; SmoothGrad can also
close over them (`weights='consts'`, what `adapters.as_function` gives), which makes them
HLO constants.
"""

import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from benchmarks.measure import Runner
from bugnist_jax import compile
from bugnist_jax.config_defaults import base, with_overrides
from bugnist_jax.data.transforms import Normalization
from bugnist_jax.models import add_saliency_branch, get_model
from bugnist_jax.models.adapters import as_function, eval_view
from bugnist_jax.saliency import smoothgrad
from bugnist_jax.training.device_data import make_epoch_fn
from bugnist_jax.training.saliency_losses import get_saliency_loss
from bugnist_jax.training.steps import make_eval_step, make_train_step

NORMALIZE = Normalization(mean=0.1, std=0.2)
SIGMA = 0.15


def _model(shape, model_kw, conv_impl, pool_impl, dtype, family="bugcnn3d", in_channels=1):
  impls = {"conv_impl": conv_impl, "pool_impl": pool_impl}
  return get_model(
    family,
    input_shape=tuple(shape),
    in_channels=in_channels,
    num_classes=12,
    dtype=jnp.dtype(dtype),
    rngs=nnx.Rngs(0),
    **{k: v for k, v in impls.items() if v is not None},
    **model_kw,
  )


def _variant(conv_impl, pool_impl) -> str:
  return "default" if conv_impl is None else f"{conv_impl}/{pool_impl}"


def _data(shape, batch, seed=0, in_channels=1):
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, (batch, *shape, in_channels), dtype=np.uint8)
  labels = rng.integers(0, 12, (batch,), dtype=np.int32)
  return images, labels


def _compile_info(jitted, *args) -> tuple:
  """(compiled, seconds to lower+compile, info with XLA's buffer sizes and cost analysis)."""
  start = time.perf_counter()
  compiled = jitted.lower(*args).compile()
  seconds = time.perf_counter() - start
  info = {}
  mem = compiled.memory_analysis()
  if mem is not None:
    total = mem.temp_size_in_bytes + mem.argument_size_in_bytes + mem.output_size_in_bytes
    info["xla_buffers_mb"] = (total - mem.alias_size_in_bytes) / 2**20
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, list | tuple) else cost
  if cost:
    info["xla_flops"] = float(cost.get("flops", 0.0))
    info["xla_bytes"] = float(cost.get("bytes accessed", 0.0))
  return compiled, seconds, info


def _device_peak():
  stats = jax.local_devices()[0].memory_stats()
  return None if not stats else stats.get("peak_bytes_in_use")


def _runner(name, info, build, items, extra=None) -> Runner:
  """A Runner whose setup calls build() -> (call, compile_s, info) and stores the call."""
  holder = {}
  info = info | (extra or {})

  def setup():
    holder["call"], seconds, extra = build()
    info.update(extra)
    return seconds

  return Runner(name, setup, lambda: holder["call"](), items, info, _device_peak)


def train_runner(
  shape: Sequence[int],
  batch: int,
  conv_impl: str | None,
  pool_impl: str | None,
  *,
  dtype: str = "float32",
  model_kw: dict,
  family: str = "bugcnn3d",
  in_channels: int = 1,
  saliency_branch: bool = False,
) -> Runner:
  """One Adam train step per call (make_train_step, state donated), uint8 batch on device.

  `saliency_branch`: the two-branch network (a 'unet' saliency branch trained with the 'mask'
  loss against a random object mask), to compare with the plain step."""

  def build():
    model = _model(shape, model_kw, conv_impl, pool_impl, dtype, family, in_channels)
    loss = None
    if saliency_branch:
      impl = conv_impl or "auto"  # a family's default variant: the decoder's default too
      add_saliency_branch(model, conv_impl=impl, dtype=jnp.dtype(dtype), rngs=nnx.Rngs(1))
      loss = get_saliency_loss(with_overrides(base(), **{"train.saliency_losses": ("mask",)}).train)
    graphdef, state = nnx.split((model, nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)))
    images, labels = _data(shape, batch, in_channels=in_channels)
    data = {"image": jnp.asarray(images), "label": jnp.asarray(labels)}
    if saliency_branch:
      data["object_mask"] = jnp.asarray(images[..., 0] > 200, jnp.uint8)
    step = make_train_step(graphdef, NORMALIZE, saliency_loss=loss)
    compiled, seconds, info = _compile_info(step, state, data)
    holder = {"state": state}

    def call():
      holder["state"], metrics = compiled(holder["state"], data)
      jax.block_until_ready(metrics)

    return call, seconds, info

  name, info = _named("train", family, conv_impl, pool_impl, dtype, model_kw)
  if saliency_branch:  # e.g. 'jax planes/argmax two-branch float32'
    info |= {"variant": f"{info['variant']} two-branch", "saliency_branch": True}
    name = f"{name.removesuffix(dtype)}two-branch {dtype}"
  return _runner(name, info, build, batch, _shape(shape, batch))


def infer_runner(
  shape: Sequence[int],
  batch: int,
  conv_impl: str | None,
  pool_impl: str | None,
  *,
  dtype: str = "float32",
  model_kw: dict,
  family: str = "bugcnn3d",
  in_channels: int = 1,
) -> Runner:
  """One inference batch per call (make_eval_step)."""

  def build():
    # make_eval_step takes a (model, optimizer) pair; inference needs no optimizer state.
    model = _model(shape, model_kw, conv_impl, pool_impl, dtype, family, in_channels)
    graphdef, state = nnx.split((model, None))
    images, labels = _data(shape, batch, in_channels=in_channels)
    data = {"image": images, "label": labels, "valid": np.ones(batch, bool)}
    data = jax.tree.map(jnp.asarray, data)
    compiled, seconds, info = _compile_info(make_eval_step(graphdef, NORMALIZE), state, data)
    return lambda: jax.block_until_ready(compiled(state, data)), seconds, info

  name, info = _named("infer", family, conv_impl, pool_impl, dtype, model_kw)
  return _runner(name, info, build, batch, _shape(shape, batch))


def smoothgrad_runner(
  shape: Sequence[int],
  num_samples: int,
  conv_impl: str,
  pool_impl: str,
  *,
  batch_size: int | None,
  dtype: str = "float32",
  weights: str = "args",
  model_kw: dict,
) -> Runner:
  """SmoothGrad of one volume per call, `batch_size` noisy copies at a time.

  weights='args': jit over (state, x, key), merged inside; 'consts': as_function(model).
  """
  if weights not in ("args", "consts"):
    raise ValueError(f"weights: expected 'args' or 'consts', got {weights!r}")

  def build():
    model = _model(shape, model_kw, conv_impl, pool_impl, dtype)
    x = jnp.asarray(NORMALIZE(_data(shape, 1)[0]))
    targets = jnp.zeros((1,), jnp.int32)
    kw = dict(targets=targets, num_samples=num_samples, sigma=SIGMA, batch_size=batch_size)
    key = jax.random.key(0)
    if weights == "consts":
      f = as_function(model)
      jitted = compile.jit(lambda x, key: smoothgrad(f, x, key=key, **kw))
      args = (x, key)
    else:
      graphdef, state = nnx.split(eval_view(model))

      def sg(state, x, key):
        return smoothgrad(lambda v: nnx.merge(graphdef, state)(v), x, key=key, **kw)

      jitted, args = compile.jit(sg), (state, x, key)
    compiled, seconds, info = _compile_info(jitted, *args)
    return lambda: jax.block_until_ready(compiled(*args)), seconds, info

  info = dict(
    kind="smoothgrad",
    framework="jax",
    variant=f"{conv_impl}/{pool_impl} weights={weights}",
    dtype=dtype,
    num_samples=num_samples,
    sg_batch_size=batch_size,
    shape=list(shape),
    batch=1,
  )
  name = f"jax {conv_impl}/{pool_impl} bs={batch_size} {weights} {dtype}"
  return _runner(name, info, build, 1)


def epoch_runner(
  shape: Sequence[int],
  num_volumes: int,
  batch: int,
  conv_impl: str,
  pool_impl: str,
  *,
  dtype: str = "float32",
  model_kw: dict,
) -> Runner:
  """One device-resident epoch per call: shuffle, augment and train, all in one jitted scan."""
  steps = num_volumes // batch

  def build():
    model = _model(shape, model_kw, conv_impl, pool_impl, dtype)
    optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
    graphdef, state = nnx.split((model, optimizer))
    images, labels = (jnp.asarray(a) for a in _data(shape, num_volumes))
    epoch = make_epoch_fn(make_train_step(graphdef, NORMALIZE), batch_size=batch)
    key = jax.random.key(1)
    compiled, seconds, info = _compile_info(epoch, state, images, labels, key)
    holder = {"state": state}

    def call():
      holder["state"], metrics = compiled(holder["state"], images, labels, key)
      jax.block_until_ready(metrics)

    return call, seconds, info

  info = dict(kind="epoch", framework="jax", variant=f"{conv_impl}/{pool_impl}", dtype=dtype)
  info |= _shape(shape, batch) | {"num_volumes": num_volumes}
  return _runner(f"jax epoch {conv_impl}/{pool_impl} {dtype}", info, build, steps * batch)


def _named(kind, family, conv_impl, pool_impl, dtype, model_kw=None) -> tuple[str, dict]:
  """(runner name, info) of a train/infer runner; a family's name says its `variant` and
  `conv` fields where given (e.g. 'jax resnet resnet18 r2plus1d float32')."""
  variant = _variant(conv_impl, pool_impl)
  info = dict(kind=kind, framework="jax", family=family, variant=variant, dtype=dtype)
  if family == "bugcnn3d":
    return f"jax {variant} {dtype}", info
  fields = " ".join(str(model_kw[k]) for k in ("variant", "conv") if k in (model_kw or {}))
  info["model_kw"] = dict(model_kw or {})
  return f"jax {family} {fields or variant} {dtype}", info


def _shape(shape, batch) -> dict:
  return {"shape": list(shape), "batch": batch}
