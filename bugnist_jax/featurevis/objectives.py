"""Objectives (what an image maximises) and the penalties and diversity term beside them.

All take a batch and return one number per image, so the images of a batch never interact
(except the variants of one channel, through the diversity term).
"""

import jax
import jax.numpy as jnp

Array = jax.Array
OBJECTIVES = ("channel", "neuron", "class")


def objective(acts: Array, channels: Array, kind: str, position: tuple[int, ...] | None) -> Array:
  """Per-image objective [B] of activations `acts` and the unit `channels` [B] of each image.

  'channel': the mean of channel `channels[b]` over all positions of acts [B, *S', C'] (the
  unit itself for flat acts [B, C']); 'neuron': its value at `position`; 'class': the logit
  `channels[b]` of acts [B, K].
  """
  index = channels.reshape(-1, *(1,) * (acts.ndim - 1))
  unit = jnp.take_along_axis(acts, index, axis=-1)[..., 0]  # [B, *S']
  if kind == "neuron":
    return unit[(slice(None), *position)]
  return unit.reshape(unit.shape[0], -1).mean(axis=-1)


def l2(x: Array) -> Array:
  """Mean square of each image x [B, *S, C] -> [B]."""
  return jnp.mean(x.reshape(x.shape[0], -1) ** 2, axis=-1)


def total_variation(x: Array) -> Array:
  """Anisotropic total variation of x [B, *S, C]: the sum over spatial axes of the mean
  |difference| of neighbours -> [B]."""
  tv = 0.0
  for axis in range(1, x.ndim - 1):
    d = jnp.abs(jnp.diff(x, axis=axis))
    tv = tv + d.reshape(d.shape[0], -1).mean(axis=-1)
  return tv


def similarity(acts: Array, variants: int) -> Array:
  """Diversity term: for acts [G * variants, ...] in groups of `variants` consecutive images,
  each image's mean cosine similarity [G * variants] of its Gram matrix (channel correlations
  over positions, Lucid's 'diversity') with the others of its group."""
  a = acts.reshape(acts.shape[0], -1, acts.shape[-1])  # [B, P, C']
  gram = jnp.einsum("bpc,bpd->bcd", a, a).reshape(a.shape[0], -1) / a.shape[1]
  gram = gram / (jnp.linalg.norm(gram, axis=-1, keepdims=True) + 1e-8)
  g = gram.reshape(-1, variants, gram.shape[-1])
  sims = jnp.einsum("gvk,gwk->gvw", g, g)  # [G, V, V], 1 on the diagonal
  return ((sims.sum(-1) - 1.0) / max(variants - 1, 1)).reshape(-1)
