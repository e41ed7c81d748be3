"""Shared pieces: input checks, target selection, class scores and the chunked sample loop.

Every method assumes the samples of a batch are independent (eval mode: no train-mode batch
norm or other batch-coupling layers). Then the gradient of `sum_b logits[b, targets[b]]` with
respect to `x` holds each sample's own map, so one backward pass serves the whole batch.
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

Array = jax.Array
Model = Callable[[Array], Array]


def check_input(x: Array, name: str = "x") -> None:
  """Raises ValueError unless `x` is batched channels-last `[B, *spatial, C]` (2D or 3D)."""
  if x.ndim not in (4, 5):
    raise ValueError(
      f"{name}: expected a batched channels-last array [B, H, W, C] or [B, D, H, W, C], "
      f"got shape {tuple(x.shape)}"
    )


def check_positive(value: int | None, name: str, allow_none: bool = False) -> None:
  """Raises ValueError unless `value` is a positive int (or None where allowed)."""
  if value is None and allow_none:
    return
  if not isinstance(value, int) or isinstance(value, bool) or value < 1:
    raise ValueError(f"{name}: expected a positive integer, got {value!r}")


def resolve_targets(logits: Array, targets: Array | None) -> Array:
  """Returns int targets `[B]`: the given ones, or each sample's argmax class when None."""
  if targets is None:
    return jnp.argmax(logits, axis=-1)
  targets = jnp.asarray(targets)
  if targets.shape != logits.shape[:1]:
    raise ValueError(
      f"targets: expected one class per sample, shape ({logits.shape[0]},), "
      f"got {tuple(targets.shape)}"
    )
  if not jnp.issubdtype(targets.dtype, jnp.integer):
    raise ValueError(f"targets: expected an integer array, got dtype {targets.dtype}")
  return targets


def pick(logits: Array, targets: Array) -> Array:
  """Per-sample target logit: `logits [B, K]`, `targets [B]` -> `[B]`."""
  return jnp.take_along_axis(logits, targets[:, None], axis=1)[:, 0]


def target_gradient(f: Model, x: Array, targets: Array) -> Array:
  """d logits[b, targets[b]] / d x[b] for every b in one pass -> `x`'s shape."""
  return jax.grad(lambda x: jnp.sum(pick(f(x), targets)))(x)


def chunked_sum(fn: Callable[[Any], Any], xs: Any, batch_size: int | None) -> Any:
  """`sum_i fn(xs[i])` over the leading axis of the pytree `xs`, `batch_size` items at a time.

  Each chunk runs as one `jax.vmap`; chunks run one after another in a `lax.scan` that carries
  the running sum, so peak memory grows with `batch_size`, not with the number of items. When
  n is not a multiple of batch_size the last chunk is padded (with copies of item 0) and the
  padding masked out of the sum: one compiled body, at most batch_size - 1 wasted items.
  `None` runs all items at once.
  """
  n = jax.tree.leaves(xs)[0].shape[0]
  size = n if batch_size is None else min(batch_size, n)
  if size == n:
    return jax.tree.map(lambda a: jnp.sum(a, axis=0), jax.vmap(fn)(xs))
  n_chunks = -(-n // size)
  index = jnp.arange(n_chunks * size)
  valid = (index < n).reshape(n_chunks, size)
  chunks = jax.tree.map(
    lambda a: a[jnp.where(index < n, index, 0)].reshape(n_chunks, size, *a.shape[1:]), xs
  )

  def add_chunk(total, chunk_and_valid):
    chunk, ok = chunk_and_valid
    out = jax.vmap(fn)(chunk)
    keep = lambda a: jnp.where(ok.reshape(-1, *(1,) * (a.ndim - 1)), a, jnp.zeros_like(a))
    return jax.tree.map(lambda t, a: t + jnp.sum(keep(a), axis=0), total, out), None

  item = jax.tree.map(lambda a: a[0], xs)
  zero = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(fn, item))
  return jax.lax.scan(add_chunk, zero, (chunks, valid))[0]


def spatial_axes(x: Array) -> tuple[int, ...]:
  """Axes of the spatial dims of a channels-last `[B, *spatial, C]` array."""
  return tuple(range(1, x.ndim - 1))


def resize_spatial(maps: Array, spatial: tuple[int, ...]) -> Array:
  """Bi/trilinear resize of `maps [B, *spatial', ...]` to `[B, *spatial, ...]`."""
  shape = (maps.shape[0], *spatial, *maps.shape[1 + len(spatial) :])
  return jax.image.resize(maps, shape, method="linear")
