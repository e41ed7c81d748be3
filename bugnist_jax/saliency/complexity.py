"""Complexity metrics of Quantus's catalogue, N-d: sparseness (Chalasani et al. 2020, the Gini
index) and complexity (Bhatt et al. 2020, the entropy of the attribution shares).

maps `[B, *spatial]` (any shape after the batch axis) -> `[B]`; both use `|maps|`, Quantus's
default `abs=True`, and are unchanged by scaling a map (Quantus's normalisation by the batch's
largest value does not change them).
"""

import jax
import jax.numpy as jnp

from bugnist_jax.saliency._maps import Array, _check_maps, _flat


@jax.jit
def sparseness(maps: Array) -> Array:
  """Gini index of `|maps| + 1e-7` (Quantus's shift): 1 for all relevance on one voxel, 0 for
  a uniform map. `[B]`."""
  _check_maps(maps)
  a = jnp.sort(jnp.abs(_flat(maps)).astype(jnp.float32) + 1e-7, axis=1)
  n = a.shape[1]
  rank = jnp.arange(1, n + 1, dtype=a.dtype)
  return jnp.sum((2 * rank - n - 1) * a, 1) / (n * jnp.sum(a, 1))


@jax.jit
def complexity(maps: Array) -> Array:
  """Entropy of the shares `|m| / sum |m|` (log base e, 1e-12 inside the log as Quantus):
  0 for one voxel, log(n) for a uniform map. `[B]`; nan for an all-zero map."""
  _check_maps(maps)
  a = jnp.abs(_flat(maps)).astype(jnp.float32)
  share = a / jnp.sum(a, 1, keepdims=True)
  return -jnp.sum(share * jnp.log(share + 1e-12), 1)
