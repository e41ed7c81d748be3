"""Class activation maps for a model split at a layer: `features(x) -> A`, `head(A) -> logits`.

`A` is channels-last `[B, *spatial', C']`. Every CAM is `relu(sum_c w[..., c] * A[..., c])`,
`[B, *spatial']`, resized bi/trilinearly (`jax.image.resize`, i.e. torch's
`align_corners=False`) to the input's spatial shape `[B, *spatial]` unless `upsample=False`.
Methods differ in the weights `w`:
- Grad-CAM (Selvaraju et al. 2017): spatial mean of dS/dA.
- Grad-CAM++ (Chattopadhay et al. 2018): the closed form with exp-score derivatives, as in
  pytorch-grad-cam (which adds 1e-6 to the denominator; here only exact zeros are guarded).
- LayerCAM (Jiang et al. 2021): relu(dS/dA) per position.
- Score-CAM (Wang et al. 2020) and IS-CAM (Naidu et al. 2020), below.
More variants (XGrad-CAM, HiResCAM, Eigen-CAM, Ablation-CAM, several layers) are in
`cam_variants`. `targets` as every method (`_common`: `[B]`, `[B, T]` or a score function,
applied to `head`'s output).

Score-CAM conventions (`convention=`). Each channel's map is upsampled to the input and min-max
normalised per sample (H_k); the input is masked, `x * H_k` (every input channel). Channels
whose map is constant (a dead channel) are skipped: weight 0 (the authors' code skips them;
masking by a constant would score a blank input).
- 'reference' (default; the authors' code, haofanwang/Score-CAM): `w_k` = softmax
  probability of the target class for `x * H_k`; no baseline is subtracted, no softmax over
  channels.
- 'grad_cam' (pytorch-grad-cam's `ScoreCAM`): `w = softmax over channels` of the raw target
  logit for `x * H_k`. pytorch-grad-cam upsamples with `align_corners=True` and keeps
  constant channels in the softmax; here both follow the rule above, so maps agree with it
  when the CAM layer has the input's resolution and no channel is constant.
IS-CAM integrates the score along the straight path from a blank input to `x * H_k`: the
score is averaged over the masks `(i / steps) * H_k`, i = 1..steps (a right Riemann sum,
Naidu et al.'s integration step), then weighted by the convention; steps=1 is Score-CAM.
torch-cam's ISCAM uses cumulative coefficients `sum_{j<=i} j/N` instead (its docstring and
code disagree); with 'grad_cam' weights and that path it would be torch-cam's.
"""

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp

from bugnist_jax.saliency._common import (
  Array,
  check_input,
  check_positive,
  pick,
  resize_spatial,
  resolve_targets,
  spatial_axes,
  with_targets,
)
from bugnist_jax.saliency.guided import guided_backprop

Features = Callable[[Array], Array]
Head = Callable[[Array], Array]
Weigh = Callable[[Array, Array], Array]
SCORE_CAM_CONVENTIONS = ("reference", "grad_cam")


def _finish(cam: Array, x: Array, upsample: bool) -> Array:
  """relu, then resize `[B, *spatial']` to `x`'s spatial shape if asked."""
  cam = jax.nn.relu(cam)
  return resize_spatial(cam, x.shape[1:-1]) if upsample else cam


def activations_and_gradients(
  features: Features, head: Head, x: Array, targets: Array | None
) -> tuple[Array, Array]:
  """`(A, dS/dA)` at the CAM layer, both `[B, *spatial', C']`; S the per-sample target logit."""
  check_input(x)
  acts = features(x)
  logits, vjp = jax.vjp(head, acts)
  targets = resolve_targets(logits, targets)
  (grads,) = vjp(jax.nn.one_hot(targets, logits.shape[-1], dtype=logits.dtype))
  return acts, grads


def _gradient_cam(features: Features, head: Head, x: Array, targets, weigh: Weigh, upsample):
  """CAM with weights `weigh(A, dS/dA)` (broadcastable to A)."""
  acts, grads = activations_and_gradients(features, head, x, targets)
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


@with_targets(2)
@partial(jax.jit, **_STATIC)
def grad_cam(
  features: Features, head: Head, x: Array, targets: Array | None = None, *, upsample=True
) -> Array:
  """Grad-CAM: `x [B, *spatial, C]` -> `[B, *spatial]` (`[B, *spatial']` if not upsample).

  `targets` is int `[B]`, or None for each sample's predicted class.
  """
  return _gradient_cam(features, head, x, targets, _grad_cam_weights, upsample)


@with_targets(2)
@partial(jax.jit, **_STATIC)
def grad_cam_plus_plus(
  features: Features, head: Head, x: Array, targets: Array | None = None, *, upsample=True
) -> Array:
  """Grad-CAM++: `x [B, *spatial, C]` -> `[B, *spatial]`."""
  return _gradient_cam(features, head, x, targets, _grad_cam_pp_weights, upsample)


@with_targets(2)
@partial(jax.jit, **_STATIC)
def layer_cam(
  features: Features, head: Head, x: Array, targets: Array | None = None, *, upsample=True
) -> Array:
  """LayerCAM: `x [B, *spatial, C]` -> `[B, *spatial]`."""
  return _gradient_cam(features, head, x, targets, _layer_cam_weights, upsample)


def _score_cam(features, head, x, targets, steps, batch_size, upsample, convention):
  """IS-CAM with `steps` mask scales; steps=1 is Score-CAM. Chunks over (channel, scale)."""
  check_input(x)
  check_positive(steps, "steps")
  check_positive(batch_size, "batch_size", allow_none=True)
  if convention not in SCORE_CAM_CONVENTIONS:
    raise ValueError(f"convention: expected one of {SCORE_CAM_CONVENTIONS}, got {convention!r}")
  acts = features(x)
  targets = resolve_targets(head(acts), targets)
  spatial, n_channels, axes = x.shape[1:-1], acts.shape[-1], spatial_axes(x)
  channels = jnp.repeat(jnp.arange(n_channels), steps)
  scales = jnp.tile(jnp.arange(1, steps + 1, dtype=x.dtype) / steps, n_channels)

  def score(item):
    """(target score for x masked by one channel's map at one scale, map not constant): [B]."""
    channel, scale = item
    mask = resize_spatial(jnp.take(acts, channel, axis=-1), spatial)  # [B, *spatial]
    low, high = jnp.min(mask, axes, keepdims=True), jnp.max(mask, axes, keepdims=True)
    mask = jnp.where(high > low, (mask - low) / jnp.where(high > low, high - low, 1), 0)
    out = head(features(x * (scale * mask)[..., None]))
    out = jax.nn.softmax(out, axis=-1) if convention == "reference" else out
    return pick(out, targets), (high > low).reshape(-1)

  # One (channel, scale) pair per item, `batch_size` items at a time: [C' * steps, B].
  scores, varies = jax.lax.map(score, (channels, scales), batch_size=batch_size)
  scores = scores.reshape(n_channels, steps, -1).mean(1)  # [C', B]
  varies = varies.reshape(n_channels, steps, -1)[:, 0]
  if convention == "reference":
    weights = jnp.where(varies, scores, 0)
  else:  # softmax over the channels that vary; none varying gives a zero map
    weights = jax.nn.softmax(jnp.where(varies, scores, -jnp.inf), axis=0)
    weights = jnp.where(varies, weights, 0)
  return _finish(jnp.einsum("cb,b...c->b...", weights, acts), x, upsample)


@with_targets(2)
@partial(jax.jit, static_argnums=(0, 1), static_argnames=("batch_size", "upsample", "convention"))
def score_cam(
  features: Features,
  head: Head,
  x: Array,
  targets: Array | None = None,
  *,
  batch_size: int | None = None,
  upsample: bool = True,
  convention: str = "reference",
) -> Array:
  """Score-CAM: `x [B, *spatial, C]` -> `[B, *spatial]`; one forward pass per channel of A.

  `batch_size` channels run at once (None: all), which sets peak memory; `convention` as the
  module docstring ('reference' or 'grad_cam').
  """
  return _score_cam(features, head, x, targets, 1, batch_size, upsample, convention)


@with_targets(2)
@partial(
  jax.jit,
  static_argnums=(0, 1),
  static_argnames=("steps", "batch_size", "upsample", "convention"),
)
def is_cam(
  features: Features,
  head: Head,
  x: Array,
  targets: Array | None = None,
  *,
  steps: int = 10,
  batch_size: int | None = None,
  upsample: bool = True,
  convention: str = "reference",
) -> Array:
  """Integrated Score-CAM: `x [B, *spatial, C]` -> `[B, *spatial]`.

  `steps` mask scales per channel; `batch_size` (channel, scale) pairs run at once;
  `convention` as Score-CAM's.
  """
  return _score_cam(features, head, x, targets, steps, batch_size, upsample, convention)


@with_targets(2)
@partial(jax.jit, static_argnums=(0, 1))
def guided_grad_cam(
  features: Features, head: Head, x: Array, targets: Array | None = None
) -> Array:
  """Guided Grad-CAM: guided backprop times the upsampled Grad-CAM, of `x`'s shape."""
  check_input(x)
  targets = resolve_targets(head(features(x)), targets)
  guided = guided_backprop(lambda x: head(features(x)), x, targets)
  return guided * grad_cam(features, head, x, targets)[..., None]
