"""Sanity checks for saliency maps (Adebayo et al. 2018): similarity measures and randomisation.

A map that stays the same when the model's weights are randomised (model parameter
randomisation) or when the model was trained on random labels (data randomisation) does not
explain the model. Similarity is measured per sample as in the paper: Spearman rank
correlation of the maps with and without absolute values, and SSIM.

Maps are `[B, *spatial]` (2D or 3D; reduce a channel axis first). The randomisation tests work
on a parameter pytree keyed by layer name, with no dependence on any neural network library.
Bad arguments raise ValueError: this package imports only jax and numpy.
"""

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bugnist_jax.saliency._maps import gaussian_filter, gaussian_radius

Array = jax.Array
Explain = Callable[[Any, Array], Array]
Reinit = Callable[[Array, Array], Array]


def _check_pair(a: Array, b: Array) -> None:
  if a.ndim < 2 or a.shape != b.shape:
    raise ValueError(
      f"maps: expected two batches [B, *spatial] of one shape, got {a.shape}, {b.shape}"
    )


def _average_ranks(v: Array) -> Array:
  """Ranks 0..n-1 of a vector `[n]`, tied values sharing their average rank (as scipy)."""
  s = jnp.sort(v)
  first = jnp.searchsorted(s, v, side="left")
  last = jnp.searchsorted(s, v, side="right") - 1
  return 0.5 * (first + last).astype(jnp.float32)


def pearson(a: Array, b: Array) -> Array:
  """Pearson correlation of each row pair: `[B, n]` x2 -> `[B]` (nan for a constant row)."""
  a = a - a.mean(1, keepdims=True)
  b = b - b.mean(1, keepdims=True)
  return jnp.sum(a * b, 1) / jnp.sqrt(jnp.sum(a * a, 1) * jnp.sum(b * b, 1))


@partial(jax.jit, static_argnames=("absolute",))
def spearman(a: Array, b: Array, *, absolute: bool = False) -> Array:
  """Spearman rank correlation of each pair of flattened maps: `[B, *spatial]` x2 -> `[B]`.

  Ties get average ranks, so this equals `scipy.stats.spearmanr` with or without ties.
  `absolute=True` ranks `|a|` and `|b|` (Adebayo et al. report both). nan where a map is
  constant (its ranks have no variance).
  """
  _check_pair(a, b)
  a, b = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
  if absolute:
    a, b = jnp.abs(a), jnp.abs(b)
  ra = jax.vmap(_average_ranks)(a.astype(jnp.float32))
  rb = jax.vmap(_average_ranks)(b.astype(jnp.float32))
  return pearson(ra, rb)


def _unit_range(a: Array) -> Array:
  """Min-max normalises each map of `[B, *spatial]` to [0, 1]; constant maps become 0."""
  axes = tuple(range(1, a.ndim))
  lo, hi = a.min(axes, keepdims=True), a.max(axes, keepdims=True)
  return jnp.where(hi > lo, (a - lo) / jnp.where(hi > lo, hi - lo, 1.0), 0.0)


@partial(jax.jit, static_argnames=("absolute", "sigma"))
def ssim(a: Array, b: Array, *, absolute: bool = False, sigma: float = 1.5) -> Array:
  """Structural similarity of each pair of maps, 2D or 3D: `[B, *spatial]` x2 -> `[B]`.

  Both maps are min-max normalised to [0, 1] (after `|.|` with `absolute=True`), then SSIM
  (Wang et al. 2004) is computed with an N-d gaussian window of std `sigma` (radius
  `gaussian_radius(sigma)`, as skimage's `gaussian_weights=True`), K1 = 0.01, K2 = 0.03, data
  range 1, sample covariances, and averaged over every voxel (skimage crops the window's
  border before averaging; on small maps that would discard most of the map).
  """
  _check_pair(a, b)
  if absolute:
    a, b = jnp.abs(a), jnp.abs(b)
  a, b = _unit_range(a.astype(jnp.float32)), _unit_range(b.astype(jnp.float32))
  axes = tuple(range(1, a.ndim))

  def blur(v):
    return gaussian_filter(v, sigma, axes)

  # skimage's unbiased covariance: n / (n - 1) for a window of n voxels.
  n = (2 * gaussian_radius(sigma) + 1) ** len(axes)
  cov = n / (n - 1)
  ma, mb = blur(a), blur(b)
  va = cov * (blur(a * a) - ma * ma)
  vb = cov * (blur(b * b) - mb * mb)
  vab = cov * (blur(a * b) - ma * mb)
  c1, c2 = 0.01**2, 0.03**2
  s = ((2 * ma * mb + c1) * (2 * vab + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
  return s.mean(axes)


@jax.jit
def compare_maps(maps_a: Array, maps_b: Array) -> dict[str, Array]:
  """All of Adebayo et al.'s similarities between two batches of maps `[B, *spatial]`.

  Use it for data (label) randomisation: maps of the model trained on true labels against
  maps of the same architecture trained on permuted labels (trained by the caller).
  Returns `{'spearman', 'spearman_abs', 'ssim', 'ssim_abs'}`, each `[B]`.
  """
  return {
    "spearman": spearman(maps_a, maps_b),
    "spearman_abs": spearman(maps_a, maps_b, absolute=True),
    "ssim": ssim(maps_a, maps_b),
    "ssim_abs": ssim(maps_a, maps_b, absolute=True),
  }


def _key_name(k: Any) -> str:
  for attr in ("key", "name", "idx"):
    if hasattr(k, attr):
      return str(getattr(k, attr))
  return str(k)


def _path_name(path: tuple) -> str:
  """'block1.kernel.value' for a pytree path (dict keys, attributes, sequence indices)."""
  return ".".join(_key_name(k) for k in path)


def normal_like(key: Array, leaf: Array) -> Array:
  """`N(mean(leaf), std(leaf))` of the leaf's shape and dtype (the default re-initialisation).

  Weights get fresh values at their original spread; constant leaves (zero biases, unit norm
  scales) stay as they were. Pass your own `reinit` where that is wrong (e.g. running
  variances, which must stay positive).
  """
  return _rescale(jax.random.normal(key, leaf.shape), leaf)


def _rescale(z: Array, leaf: Array) -> Array:
  return (jnp.mean(leaf) + jnp.std(leaf) * z).astype(leaf.dtype)


def _under(name: str, layers: Sequence[str]) -> bool:
  return any(name == layer or name.startswith(layer + ".") for layer in layers)


def _randomize(params: Any, layers: Sequence[str], key: Array, reinit: Reinit | None) -> Any:
  """`params` with every inexact leaf under one of `layers` re-initialised.

  With a `reinit`, leaf i (flattening order) gets `reinit(split(key)[i], leaf)`. Without, one
  standard normal vector is drawn for all chosen leaves and rescaled as `normal_like` does:
  the same distribution, but a single random generator to compile instead of one per leaf.
  """
  leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
  chosen = [
    _under(_path_name(path), layers) and jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.inexact)
    for path, leaf in leaves
  ]
  leaves = [leaf for _, leaf in leaves]
  if reinit is None:
    sizes = [leaf.size for leaf, c in zip(leaves, chosen, strict=True) if c]
    z = iter(jnp.split(jax.random.normal(key, (sum(sizes),)), np.cumsum(sizes)[:-1]))
    new = [
      _rescale(next(z).reshape(a.shape), a) if c else a for a, c in zip(leaves, chosen, strict=True)
    ]
  else:
    keys = jax.random.split(key, len(leaves))
    new = [reinit(k, a) if c else a for k, a, c in zip(keys, leaves, chosen, strict=True)]
  return jax.tree_util.tree_unflatten(treedef, new)


def _randomization_test(
  explain: Explain,
  params: Any,
  layer_order: Sequence[str],
  x: Array,
  key: Array,
  reinit: Reinit | None,
  cumulative: bool,
) -> dict[str, Any]:
  layer_order = list(layer_order)
  names = [_path_name(p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
  for layer in layer_order:
    if not any(_under(n, [layer]) for n in names):
      raise ValueError(f"layer_order: no parameters under {layer!r} (leaves: {names})")
  # Every layer's new weights are drawn once (one compiled call), so a layer has the same
  # random weights in every step; each step then only picks leaves.
  fresh = jax.jit(lambda p, k: _randomize(p, layer_order, k, reinit))(params, key)
  original = explain(params, x)
  rows = [compare_maps(original, original)]
  for k in range(1, len(layer_order) + 1):
    layers = layer_order[:k] if cumulative else layer_order[k - 1 : k]
    mixed = jax.tree_util.tree_map_with_path(
      lambda path, old, new, layers=layers: new if _under(_path_name(path), layers) else old,
      params,
      fresh,
    )
    rows.append(compare_maps(original, explain(mixed, x)))
  out: dict[str, Any] = {m: jnp.stack([r[m] for r in rows]) for m in rows[0]}
  out["layers"] = ["original", *layer_order]
  return out


def cascading_randomization(
  explain: Explain,
  params: Any,
  layer_order: Sequence[str],
  x: Array,
  *,
  key: Array,
  reinit: Reinit | None = None,
) -> dict[str, Any]:
  """Cascading model parameter randomisation (Adebayo et al. 2018), on a parameter pytree.

  Step k (1..L) re-initialises the first k layers of `layer_order` (listed from the logits
  down to the input), computes maps and compares them with the original maps.

  Args:
    explain: `explain(params, x) -> maps [B, *spatial]`, e.g. a saliency method on the model
      rebuilt from `params` (jit it once: every step passes a pytree of the same structure).
    params: a pytree whose top-level keys are layer names (a dict, an `nnx.State`, ...);
      a layer name may also be a dotted path prefix such as `'blocks.0'`.
    layer_order: layer names, top (logits) first.
    x: inputs `[B, *spatial, C]`.
    key: PRNG key for the new weights; a layer gets the same weights in every step (and in
      `independent_randomization` with the same key).
    reinit: `reinit(key, leaf) -> new leaf` for every inexact leaf of a randomised layer;
      default: normal with the leaf's own mean and std (as `normal_like`).

  Returns:
    `{'spearman', 'spearman_abs', 'ssim', 'ssim_abs'}` each `[L + 1, B]` (row 0: the
    original maps against themselves, so 1 unless a map is constant), and `'layers'`:
    `['original', *layer_order]`, the name of each row's last randomised layer.
  """
  return _randomization_test(explain, params, layer_order, x, key, reinit, cumulative=True)


def independent_randomization(
  explain: Explain,
  params: Any,
  layer_order: Sequence[str],
  x: Array,
  *,
  key: Array,
  reinit: Reinit | None = None,
) -> dict[str, Any]:
  """Independent (one layer at a time) parameter randomisation: row k re-initialises only
  `layer_order[k - 1]`. Arguments and returns as `cascading_randomization`."""
  return _randomization_test(explain, params, layer_order, x, key, reinit, cumulative=False)
