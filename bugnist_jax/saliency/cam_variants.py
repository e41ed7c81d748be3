"""More class activation maps, as `cam`: XGrad-CAM, HiResCAM, element-wise Grad-CAM, Eigen-CAM,
Ablation-CAM, and the fusion of CAMs from several layers.

Same signature and output as `grad_cam` (`features(x) -> A [B, *spatial', C']`, `head(A) ->
logits`, maps `[B, *spatial]`, or `[B, *spatial']` with `upsample=False`), 2D and 3D alike
(pytorch-grad-cam 1.5.7 handles 3D for all of these but Ablation-CAM).
- XGrad-CAM (Fu et al. 2020): `w_c = sum_s(A g) / (sum_s A + 1e-7)` (pytorch-grad-cam's eps).
- HiResCAM (Draelos & Carin 2020): `sum_c g * A` per position (no spatial averaging).
- element-wise Grad-CAM (pytorch-grad-cam's GradCAMElementWise): `sum_c relu(g * A)`.
- Eigen-CAM (Muhammad & Yeasin 2020): the projection of each position's activations, centred
  over positions, on their first principal direction; no gradient and no target. The sign of a
  principal direction is arbitrary (numpy and LAPACK pick either); here it is chosen so the
  projection correlates positively with the channel-mean activation, so maps are reproducible.
- Ablation-CAM (Desai & Ramaswamy 2020): `w_c = (S - S_c) / S` with `S_c` the target logit with
  channel c of A set to 0, one head pass per channel (`batch_size` channels at a time).
  pytorch-grad-cam sets the channel to 0 only when the layer's minimum is 0 (a post-ReLU
  layer, the usual CAM layer) and to `min - 1e7` otherwise; here it is always 0, as the paper.
"""

from collections.abc import Callable, Sequence
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
from bugnist_jax.saliency.cam import Features, Head, _finish, activations_and_gradients

_STATIC = dict(static_argnums=(0, 1), static_argnames=("upsample",))


@with_targets(2)
@partial(jax.jit, **_STATIC)
def x_grad_cam(
  features: Features, head: Head, x: Array, targets: Array | None = None, *, upsample=True
) -> Array:
  """XGrad-CAM: `x [B, *spatial, C]` -> `[B, *spatial]`."""
  acts, grads = activations_and_gradients(features, head, x, targets)
  axes = spatial_axes(acts)
  weights = jnp.sum(grads * acts, axes, keepdims=True) / (jnp.sum(acts, axes, keepdims=True) + 1e-7)
  return _finish(jnp.sum(weights * acts, axis=-1), x, upsample)


@with_targets(2)
@partial(jax.jit, **_STATIC)
def hires_cam(
  features: Features, head: Head, x: Array, targets: Array | None = None, *, upsample=True
) -> Array:
  """HiResCAM: `relu(sum_c dS/dA * A)`, `x [B, *spatial, C]` -> `[B, *spatial]`."""
  acts, grads = activations_and_gradients(features, head, x, targets)
  return _finish(jnp.sum(grads * acts, axis=-1), x, upsample)


@with_targets(2)
@partial(jax.jit, **_STATIC)
def grad_cam_elementwise(
  features: Features, head: Head, x: Array, targets: Array | None = None, *, upsample=True
) -> Array:
  """Element-wise Grad-CAM: `sum_c relu(dS/dA * A)`, `x [B, *spatial, C]` -> `[B, *spatial]`."""
  acts, grads = activations_and_gradients(features, head, x, targets)
  return _finish(jnp.sum(jax.nn.relu(grads * acts), axis=-1), x, upsample)


@partial(jax.jit, static_argnums=0, static_argnames=("upsample",))
def eigen_cam(features: Features, x: Array, *, upsample: bool = True) -> Array:
  """Eigen-CAM: `x [B, *spatial, C]` -> `[B, *spatial]` (first principal component of A)."""
  check_input(x)
  acts = features(x)
  flat = acts.reshape(acts.shape[0], -1, acts.shape[-1])  # [B, P, C']
  centred = flat - flat.mean(1, keepdims=True)
  # The top right-singular vector of the centred [P, C'] matrix: the top eigenvector of its
  # C' x C' scatter matrix (eigh sorts eigenvalues ascending).
  direction = jnp.linalg.eigh(jnp.einsum("bpc,bpd->bcd", centred, centred))[1][..., -1]
  projection = jnp.einsum("bpc,bc->bp", centred, direction)
  sign = jnp.sign(jnp.sum(projection * flat.mean(-1), axis=1, keepdims=True))
  projection = projection * jnp.where(sign == 0, 1, sign)
  return _finish(projection.reshape(acts.shape[:-1]), x, upsample)


@with_targets(2)
@partial(jax.jit, static_argnums=(0, 1), static_argnames=("batch_size", "upsample"))
def ablation_cam(
  features: Features,
  head: Head,
  x: Array,
  targets: Array | None = None,
  *,
  batch_size: int | None = None,
  upsample: bool = True,
) -> Array:
  """Ablation-CAM: `x [B, *spatial, C]` -> `[B, *spatial]`; `batch_size` channels at a time.

  A sample whose target logit is 0 gets a zero map (the relative drop is undefined).
  """
  check_input(x)
  check_positive(batch_size, "batch_size", allow_none=True)
  acts = features(x)
  logits = head(acts)
  targets = resolve_targets(logits, targets)
  score = pick(logits, targets)  # [B]

  def ablated(channel):
    keep = jnp.arange(acts.shape[-1]) != channel
    return pick(head(jnp.where(keep, acts, 0)), targets)

  dropped = jax.lax.map(ablated, jnp.arange(acts.shape[-1]), batch_size=batch_size)  # [C', B]
  safe = jnp.where(score != 0, score, 1)
  weights = jnp.where(score != 0, (score - dropped) / safe, 0)
  return _finish(jnp.einsum("cb,b...c->b...", weights, acts), x, upsample)


def _unit_range(maps: Array, n_spatial: int) -> Array:
  """Min-max normalises each map over its last `n_spatial` axes to [0, 1] (pytorch-grad-cam's
  scale_cam_image, eps 1e-7); a constant map becomes 0."""
  axes = tuple(range(maps.ndim - n_spatial, maps.ndim))
  low = jnp.min(maps, axes, keepdims=True)
  return (maps - low) / (1e-7 + jnp.max(maps, axes, keepdims=True) - low)


def multi_layer_cam(
  cam: Callable[..., Array],
  splits: Sequence[tuple[Features, Head]],
  x: Array,
  targets: Array | None = None,
  **kwargs,
) -> Array:
  """A CAM method fused over several layers, as pytorch-grad-cam's list of `target_layers`.

  Each layer's map (`cam(features, head, x, targets, upsample=False, **kwargs)`) is min-max
  normalised at its layer's resolution, then resized to the input's (so a map's maximum stays
  1 whatever the interpolation), the maps are averaged and the mean normalised again:
  `x [B, *spatial, C]` -> `[B, *spatial]` in [0, 1] (`[B, T, *spatial]` for targets `[B, T]`).
  `splits` are `(features, head)` pairs, one per layer.
  """
  if not splits:
    raise ValueError("splits: expected at least one (features, head) pair")
  spatial = x.shape[1:-1]
  n = len(spatial)

  def layer_map(fe, hd):
    m = _unit_range(cam(fe, hd, x, targets, upsample=False, **kwargs), n)
    lead = m.shape[:-n]  # [B] or [B, T]
    return resize_spatial(m.reshape(-1, *m.shape[-n:]), spatial).reshape(*lead, *spatial)

  maps = [layer_map(fe, hd) for fe, hd in splits]
  return _unit_range(sum(maps) / len(maps), n)
