"""Class activation maps for a model split at a layer: `features(x) -> A`, `head(A) -> logits`.

`A` is channels-last `[B, *spatial', C']`. Every CAM is `relu(sum_c w[..., c] * A[..., c])`,
`[B, *spatial']`, resized bi/trilinearly (`jax.image.resize`) to the input's spatial shape
`[B, *spatial]` unless `upsample=False`. Methods differ in the weights `w`:
- Grad-CAM (Selvaraju et al. 2017): spatial mean of dS/dA.
- Grad-CAM++ (Chattopadhay et al. 2018): the closed form with exp-score derivatives, as in
  pytorch-grad-cam.
- LayerCAM (Jiang et al. 2021): relu(dS/dA) per position.
- Score-CAM (Wang et al. 2020): softmax score of the target for the input masked by each
  channel's map (upsampled, min-max normalised per sample).
- IS-CAM (Naidu et al. 2020): Score-CAM's score averaged over masks scaled by i/steps,
  i = 1..steps (a Riemann sum of the score along the path from a blank to the masked input).
"""

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp

from bugnist_jax.saliency._common import (
  Array,
  check_input,
  check_positive,
  chunked_sum,
  pick,
  resize_spatial,
  resolve_targets,
  spatial_axes,
)
from bugnist_jax.saliency.guided import guided_backprop

Features = Callable[[Array], Array]
Head = Callable[[Array], Array]
Weigh = Callable[[Array, Array], Array]


def _finish(cam: Array, x: Array, upsample: bool) -> Array:
  """relu, then resize `[B, *spatial']` to `x`'s spatial shape if asked."""
  cam = jax.nn.relu(cam)
  return resize_spatial(cam, x.shape[1:-1]) if upsample else cam


def _gradient_cam(features: Features, head: Head, x: Array, targets, weigh: Weigh, upsample):
  """CAM with weights `weigh(A, dS/dA)` (broadcastable to A); S the per-sample target logit."""
  check_input(x)
  acts = features(x)
  logits, vjp = jax.vjp(head, acts)
  targets = resolve_targets(logits, targets)
  (grads,) = vjp(jax.nn.one_hot(targets, logits.shape[-1], dtype=logits.dtype))
  return _finish(jnp.sum(weigh(acts, grads) * acts, axis=-1), x, upsample)


def _grad_cam_weights(acts: Array, grads: Array) -> Array:
  return jnp.mean(grads, axis=spatial_axes(acts), keepdims=True)


def _grad_cam_pp_weights(acts: Array, grads: Array) -> Array:
  axes = spatial_axes(acts)
  g2 = grads * grads
  denom = 2 * g2 + jnp.sum(acts, axis=axes, keepdims=True) * g2 * grads
  alpha = jnp.where(grads != 0, g2 / jnp.where(denom != 0, denom, 1), 0)
  return jnp.sum(alpha * jax.nn.relu(grads), axis=axes, keepdims=True)


def _layer_cam_weights(acts: Array, grads: Array) -> Array:
  return jax.nn.relu(grads)


_STATIC = dict(static_argnums=(0, 1), static_argnames=("upsample",))


@partial(jax.jit, **_STATIC)
def grad_cam(
  features: Features, head: Head, x: Array, targets: Array | None = None, *, upsample=True
) -> Array:
  """Grad-CAM: `x [B, *spatial, C]` -> `[B, *spatial]` (`[B, *spatial']` if not upsample).

  `targets` is int `[B]`, or None for each sample's predicted class.
  """
  return _gradient_cam(features, head, x, targets, _grad_cam_weights, upsample)


@partial(jax.jit, **_STATIC)
def grad_cam_plus_plus(
  features: Features, head: Head, x: Array, targets: Array | None = None, *, upsample=True
) -> Array:
  """Grad-CAM++: `x [B, *spatial, C]` -> `[B, *spatial]`."""
  return _gradient_cam(features, head, x, targets, _grad_cam_pp_weights, upsample)


@partial(jax.jit, **_STATIC)
def layer_cam(
  features: Features, head: Head, x: Array, targets: Array | None = None, *, upsample=True
) -> Array:
  """LayerCAM: `x [B, *spatial, C]` -> `[B, *spatial]`."""
  return _gradient_cam(features, head, x, targets, _layer_cam_weights, upsample)


def _score_cam(features, head, x, targets, steps, batch_size, upsample):
  """IS-CAM with `steps` mask scales; steps=1 is Score-CAM. Chunks over (channel, scale)."""
  check_input(x)
  check_positive(steps, "steps")
  check_positive(batch_size, "batch_size", allow_none=True)
  acts = features(x)
  targets = resolve_targets(head(acts), targets)
  spatial, n_channels = x.shape[1:-1], acts.shape[-1]
  channels = jnp.repeat(jnp.arange(n_channels), steps)
  scales = jnp.tile(jnp.arange(1, steps + 1, dtype=x.dtype) / steps, n_channels)

  def weighted_map(item):
    channel, scale = item
    act = jnp.take(acts, channel, axis=-1)  # [B, *spatial']
    mask = resize_spatial(act, spatial)
    axes = spatial_axes(x)
    low, high = jnp.min(mask, axes, keepdims=True), jnp.max(mask, axes, keepdims=True)
    mask = jnp.where(high > low, (mask - low) / jnp.where(high > low, high - low, 1), 0)
    probs = jax.nn.softmax(head(features(x * (scale * mask)[..., None])), axis=-1)
    score = pick(probs, targets) / steps  # [B]
    return score.reshape(-1, *(1,) * (act.ndim - 1)) * act

  return _finish(chunked_sum(weighted_map, (channels, scales), batch_size), x, upsample)


@partial(jax.jit, static_argnums=(0, 1), static_argnames=("batch_size", "upsample"))
def score_cam(
  features: Features,
  head: Head,
  x: Array,
  targets: Array | None = None,
  *,
  batch_size: int | None = None,
  upsample: bool = True,
) -> Array:
  """Score-CAM: `x [B, *spatial, C]` -> `[B, *spatial]`; one forward pass per channel of A.

  `batch_size` channels run at once (None: all), which sets peak memory.
  """
  return _score_cam(features, head, x, targets, 1, batch_size, upsample)


@partial(jax.jit, static_argnums=(0, 1), static_argnames=("steps", "batch_size", "upsample"))
def is_cam(
  features: Features,
  head: Head,
  x: Array,
  targets: Array | None = None,
  *,
  steps: int = 10,
  batch_size: int | None = None,
  upsample: bool = True,
) -> Array:
  """Integrated Score-CAM: `x [B, *spatial, C]` -> `[B, *spatial]`.

  `steps` mask scales per channel; `batch_size` (channel, scale) pairs run at once.
  """
  return _score_cam(features, head, x, targets, steps, batch_size, upsample)


@partial(jax.jit, static_argnums=(0, 1))
def guided_grad_cam(
  features: Features, head: Head, x: Array, targets: Array | None = None
) -> Array:
  """Guided Grad-CAM: guided backprop times the upsampled Grad-CAM, of `x`'s shape."""
  check_input(x)
  targets = resolve_targets(head(features(x)), targets)
  guided = guided_backprop(lambda x: head(features(x)), x, targets)
  return guided * grad_cam(features, head, x, targets)[..., None]
