"""Activation maximisation: images that maximise units of any function, many at once.

Every image is optimised independently: its own random start, transforms and optimiser state
(Adam, or gradient steps normalised per image), so the images can be computed in chunks of
`batch_size` channels, one after another inside one compiled program, and the result does not
depend on the chunk size. Only the variants of one channel interact (the diversity term), and
a chunk never splits them.
"""

import dataclasses
from collections.abc import Callable, Sequence
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from bugnist_jax.featurevis import objectives as obj
from bugnist_jax.featurevis.image import PARAMETERIZATIONS, ImageParam
from bugnist_jax.featurevis.transforms import Transforms, default_transforms, transform_batch

Array = jax.Array
OPTIMIZERS = ("adam", "normalized")


class Result(NamedTuple):
  """What `visualize` returns (N = len(channels); with variants V > 1 a V axis follows N)."""

  images: Array  # [N, *input_shape]: model-input space
  activation: Array  # [N]: the objective at the final images, without transforms
  history: Array  # [steps, N]: the objective at each step (under its transforms), before it


@dataclasses.dataclass(frozen=True)
class _Settings:
  objective: str
  position: tuple[int, ...] | None
  steps: int
  learning_rate: float
  optimizer: str
  transforms: Transforms
  blur_sigma: float
  blur_every: int
  l2: float
  tv: float
  diversity: float
  variants: int
  init_scale: float
  chunk: int  # channels optimised at once


def _normalize_per_image() -> optax.GradientTransformation:
  """Each image's gradient divided by its RMS (DeepVisionVR's step, per image, not per batch,
  so that images stay independent)."""

  def scale(updates, params=None):
    del params
    rms = jnp.sqrt(jnp.mean(updates**2, axis=tuple(range(1, updates.ndim)), keepdims=True))
    return updates / (rms + 1e-6)

  return optax.stateless(lambda g, p: jax.tree.map(scale, g))


def _optimizer(s: _Settings) -> optax.GradientTransformation:
  if s.optimizer == "adam":
    return optax.adam(s.learning_rate)
  return optax.chain(_normalize_per_image(), optax.sgd(s.learning_rate))


def _chunk(features, param: ImageParam, s: _Settings, channels, keys, init):
  """Optimises one chunk: channels [G], keys [G, V], init [G, V, *param_shape] or None ->
  (images [G*V, *S, C], activation [G*V], history [steps, G*V])."""
  units = jnp.repeat(channels, s.variants)
  init_keys, step_keys = jax.vmap(jax.random.split, out_axes=1)(keys.reshape(-1))
  if init is None:
    params = jax.vmap(lambda k: param.random(k, s.init_scale))(init_keys)
  else:
    params = init.reshape(-1, *init.shape[2:])
  opt = _optimizer(s)

  def loss(p, t):
    x = param.image(p)
    keys_t = jax.vmap(lambda k: jax.random.fold_in(k, t))(step_keys)
    acts = features(transform_batch(keys_t, x, s.transforms))
    value = obj.objective(acts, units, s.objective, s.position)
    total = -value + s.l2 * obj.l2(x) + s.tv * obj.total_variation(x)
    if s.diversity:
      total = total + s.diversity * obj.similarity(acts, s.variants)
    return jnp.sum(total), value

  def step(carry, t):
    p, state = carry
    grads, value = jax.grad(loss, has_aux=True)(p, t)
    updates, state = opt.update(grads, state, p)
    p = optax.apply_updates(p, updates)
    if s.blur_sigma > 0:  # a regularising blur every `blur_every` steps, never after the last
      due = ((t + 1) % s.blur_every == 0) & (t < s.steps - 1)
      p = jnp.where(due, param.blur(p, s.blur_sigma), p)
    return (p, state), value

  (params, _), history = jax.lax.scan(step, (params, opt.init(params)), jnp.arange(s.steps))
  images = param.image(params)
  final = obj.objective(features(images), units, s.objective, s.position)
  return images, final, history


def _keys(key: Array, n: int, variants: int) -> Array:
  """Keys [n, variants]: image (i, v) gets fold_in(fold_in(key, i), v), whatever the chunks."""
  per_image = lambda i: jax.vmap(lambda v: jax.random.fold_in(jax.random.fold_in(key, i), v))
  return jax.vmap(lambda i: per_image(i)(jnp.arange(variants)))(jnp.arange(n))


def _start(param: ImageParam, s: _Settings, init: Array, keys: Array) -> Array:
  """Parameters [N, V, *param_shape] of start images init [N, *S, C]; variants get a little
  noise each so that the diversity term has something to push apart."""
  p = jnp.repeat(param.params_of(init)[:, None], s.variants, axis=1)
  if s.variants == 1:
    return p
  noise = jax.vmap(jax.vmap(lambda k: param.random(jax.random.fold_in(k, 7), s.init_scale)))
  return p + noise(keys)


@partial(jax.jit, static_argnames=("features", "param", "s"))
def _visualize(features, param: ImageParam, s: _Settings, channels, key, init):
  """All chunks in one program: channels [N], init [N, *S, C] or None."""
  n = channels.shape[0]
  keys = _keys(key, n, s.variants)
  start = None if init is None else _start(param, s, init, keys)
  chunks = -(-n // s.chunk)
  take = jnp.where(jnp.arange(chunks * s.chunk) < n, jnp.arange(chunks * s.chunk), 0)
  split = lambda a: None if a is None else a[take].reshape(chunks, s.chunk, *a.shape[1:])
  run = lambda args: _chunk(features, param, s, *args)
  images, final, history = jax.lax.map(run, (split(channels), split(keys), split(start)))
  v = s.variants
  images = images.reshape(chunks * s.chunk, v, *images.shape[2:])[:n]
  final = final.reshape(-1, v)[:n]
  history = jnp.moveaxis(history, 1, 0).reshape(s.steps, -1, v)[:, :n]
  return images, final, history


def _check_output(acts, objective: str, position, channels: np.ndarray):
  """Validated neuron position (or None) for feature outputs of shape `acts.shape`."""
  num = acts.shape[-1]
  if acts.ndim < 2:
    raise ValueError(f"features: expected outputs [B, *spatial, C] or [B, C], got {acts.shape}")
  if objective == "class" and acts.ndim != 2:
    raise ValueError(f"objective: 'class' needs logits [B, K]; features give {acts.shape}")
  bad = channels[(channels < 0) | (channels >= num)]
  if bad.size:
    raise ValueError(f"channels: {int(bad[0])} is out of range for {num} channels")
  if objective != "neuron":
    return None
  spatial = acts.shape[1:-1]
  if not spatial:
    raise ValueError(f"objective: 'neuron' needs spatial features; features give {acts.shape}")
  position = tuple(n // 2 for n in spatial) if position is None else tuple(map(int, position))
  inside = len(position) == len(spatial) and all(
    0 <= p < n for p, n in zip(position, spatial, strict=True)
  )
  if not inside:
    raise ValueError(f"position: {position} is not a position of the features' {spatial} map")
  return position


def _check_args(
  input_shape, channels, objective, parameterization, optimizer, *, counts, batch_size, diversity
):
  """ValueError naming the first bad argument; `counts` are {name: value} of positive ints."""
  if len(input_shape) not in (3, 4) or min(input_shape, default=0) < 1:
    raise ValueError(f"input_shape: expected [*spatial, C] of a 2D or 3D image, got {input_shape}")
  if channels.ndim != 1 or channels.size == 0:
    raise ValueError(f"channels: expected a non-empty list of ints, got shape {channels.shape}")
  if not np.issubdtype(channels.dtype, np.integer):
    raise ValueError(f"channels: expected integers, got dtype {channels.dtype}")
  for name, value, valid in (
    ("objective", objective, obj.OBJECTIVES),
    ("parameterization", parameterization, PARAMETERIZATIONS),
    ("optimizer", optimizer, OPTIMIZERS),
  ):
    if value not in valid:
      raise ValueError(f"{name}: unknown {value!r}; valid: {', '.join(valid)}")
  for name, value in counts.items():
    if not isinstance(value, int) or value < 1:
      raise ValueError(f"{name}: expected a positive integer, got {value!r}")
  if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
    raise ValueError(f"batch_size: expected a positive integer or None, got {batch_size!r}")
  if diversity and counts["variants"] < 2:
    raise ValueError("diversity: needs variants >= 2 (it pushes a channel's images apart)")


def visualize(
  features: Callable[[Array], Array],
  input_shape: Sequence[int],
  channels: Sequence[int] | Array,
  *,
  key: Array,
  objective: str = "channel",
  position: Sequence[int] | None = None,
  parameterization: str = "fourier",
  steps: int = 256,
  learning_rate: float = 0.05,
  optimizer: str = "adam",
  transforms: Transforms | None = None,
  blur_sigma: float = 0.0,
  blur_every: int = 1,
  l2: float = 0.0,
  tv: float = 0.0,
  diversity: float = 0.0,
  variants: int = 1,
  init: Array | None = None,
  init_scale: float = 0.01,
  color: Array | None = None,
  value_range: tuple[float, float] | None = None,
  decay_power: float = 1.0,
  batch_size: int | None = None,
) -> Result:
  """Images that maximise units of `features`, image i for unit `channels[i]`.

  Args:
    features: any function x [B, *input_shape] -> [B, *spatial', C'] (a model cut at a stage)
      or [B, K] (logits); images of a batch must not interact (eval mode).
    input_shape: [*spatial, C] of one image (2D or 3D).
    channels: unit index per image [N] (duplicates allowed: each gets its own image).
    key: PRNG key; image i's randomness is `fold_in(key, i)`, whatever the chunking.
    objective: 'channel' (spatial mean of the channel), 'neuron' (its value at `position`,
      default the centre of the map) or 'class' (logit `channels[i]` of features [B, K]).
    parameterization: 'pixel' or 'fourier' (see `image.ImageParam`), with `color` [C, C]
      (`color_correlation`; default identity), `value_range` (lo, hi) of valid inputs (a
      sigmoid keeps images inside; default unbounded) and `decay_power` of the spectrum.
    steps, learning_rate, optimizer: 'adam', or 'normalized' (gradient divided by its RMS per
      image, then a plain step: DeepVisionVR's rule).
    transforms: random transforms every step (`Transforms`); None: `default_transforms`.
    blur_sigma, blur_every: Gaussian blur of the latent image every `blur_every` steps.
    l2, tv: weights of the mean square and total-variation penalties of the image.
    diversity, variants: `variants` images per channel, pushed apart with weight `diversity`.
    init: a start image [*input_shape] or one per channel [N, *input_shape] (model-input
      space); None: random parameters of std `init_scale`.
    batch_size: channels optimised at once (peak memory); None: all.

  Returns:
    `Result(images [N, *input_shape], activation [N], history [steps, N])`; with
    variants > 1, every array has a variants axis after N.
  """
  shape = tuple(int(n) for n in input_shape)
  units = np.asarray(channels)
  counts = dict(steps=steps, variants=variants, blur_every=blur_every)
  _check_args(
    shape, units, objective, parameterization, optimizer,
    counts=counts, batch_size=batch_size, diversity=diversity,
  )  # fmt: skip
  spatial = shape[:-1]
  transforms = default_transforms(len(spatial)) if transforms is None else transforms
  transforms.check(len(spatial))
  try:
    acts = jax.eval_shape(features, jax.ShapeDtypeStruct((1, *shape), jnp.float32))
  except Exception as e:  # noqa: BLE001 - any failure means features cannot take this shape
    raise ValueError(f"input_shape: features cannot take images {shape} ({e})") from None
  position = _check_output(acts, objective, position, units)
  if color is not None:
    color = np.asarray(color, np.float32)
    if color.shape != (shape[-1],) * 2 or abs(np.linalg.det(color)) < 1e-8:
      raise ValueError(f"color: expected an invertible [{shape[-1]}, {shape[-1]}] matrix")
    color = tuple(map(tuple, color.tolist()))
  if value_range is not None and not float(value_range[0]) < float(value_range[1]):
    raise ValueError(f"value_range: expected (lo, hi) with lo < hi, got {value_range}")
  param = ImageParam(
    spatial,
    shape[-1],
    parameterization,
    float(decay_power),
    color,
    None if value_range is None else (float(value_range[0]), float(value_range[1])),
  )
  n = units.size
  settings = _Settings(
    objective,
    position,
    steps,
    float(learning_rate),
    optimizer,
    transforms,
    float(blur_sigma),
    blur_every,
    float(l2),
    float(tv),
    float(diversity),
    variants,
    float(init_scale),
    n if batch_size is None else min(batch_size, n),
  )
  start = None
  if init is not None:
    start = jnp.asarray(init, jnp.float32)
    if start.shape == shape:
      start = jnp.broadcast_to(start, (n, *shape))
    if start.shape != (n, *shape):
      raise ValueError(f"init: expected {list(shape)} or [{n}, ...] images, got {start.shape}")
  images, final, history = _visualize(
    features, param, settings, jnp.asarray(units, jnp.int32), key, start
  )
  if variants == 1:
    images, final, history = images[:, 0], final[:, 0], history[..., 0]
  return Result(images, final, history)


def maximize(
  features: Callable[[Array], Array],
  input_shape: Sequence[int],
  channels: Sequence[int] | Array,
  *,
  key: Array,
  **options,
) -> Array:
  """`visualize(...).images`: [len(channels), *input_shape] (options as `visualize`)."""
  return visualize(features, input_shape, channels, key=key, **options).images
