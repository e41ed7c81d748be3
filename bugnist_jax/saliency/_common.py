"""Shared pieces: input checks, target selection, class scores and the chunked sample loop.

Every method assumes the samples of a batch are independent (eval mode: no train-mode batch
norm or other batch-coupling layers). Then the gradient of `sum_b logits[b, targets[b]]` with
respect to `x` holds each sample's own map, so one backward pass serves the whole batch.

Targets (`with_targets`): every method takes
- None: each sample's predicted class;
- int `[B]`: one class per sample -> maps `[B, ...]`;
- int `[B, T]`: T classes per sample in one call -> maps `[B, T, ...]` (the method is vmapped
  over T, so T maps are in memory at once);
- a function `score(outputs) -> [B]` of whatever the model returns (a segmentation region's
  sum, a masked sum, a regression output): `f` need not return `[B, K]`. Reuse one function
  object: it is a static argument (a new lambda per call means a new compilation).
"""

import dataclasses
import functools
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
      f"targets: expected one class per sample, shape ({logits.shape[0]},), or [B, T], "
      f"got {tuple(targets.shape)}"
    )
  if not jnp.issubdtype(targets.dtype, jnp.integer):
    raise ValueError(f"targets: expected an integer array, got dtype {targets.dtype}")
  return targets


@dataclasses.dataclass(frozen=True)
class Scored:
  """`model` followed by a per-sample score, as a one-class model: `x -> score(model(x))[:, None]`.

  Frozen, so two `Scored` of the same functions are equal and hash alike (one compilation).
  """

  model: Callable[[Array], Any]
  score: Callable[[Any], Array]

  def __call__(self, x: Array) -> Array:
    s = self.score(self.model(x))
    if s.ndim != 1:
      raise ValueError(
        f"targets: a target function must return one score per sample [B], got {s.shape}"
      )
    return s[:, None]


def with_targets(n_models: int) -> Callable[[Callable], Callable]:
  """Decorates `method(*models, x, targets=None, **kw)` so `targets` may also be `[B, T]` or a
  score function (module docstring). The last of the `n_models` callables (`f`, or `head` for
  CAMs) is the one a score function is applied to."""

  def wrap(method: Callable) -> Callable:
    @functools.wraps(method)
    def run(*args, **kwargs):
      models, x, rest = args[:n_models], args[n_models], list(args[n_models + 1 :])
      targets = rest.pop(0) if rest else kwargs.pop("targets", None)
      if callable(targets):
        models = (*models[:-1], Scored(models[-1], targets))
        targets = jnp.zeros(x.shape[:1], jnp.int32)
      if targets is not None and jnp.ndim(targets) == 2:
        one = lambda t: method(*models, x, t, *rest, **kwargs)
        return jax.vmap(one, in_axes=1, out_axes=1)(jnp.asarray(targets))
      return method(*models, x, targets, *rest, **kwargs)

    return run

  return wrap


def pick(logits: Array, targets: Array) -> Array:
  """Per-sample target logit: `logits [B, K]`, `targets [B]` -> `[B]`."""
  return jnp.take_along_axis(logits, targets[:, None], axis=1)[:, 0]


def target_gradient(f: Model, x: Array, targets: Array) -> Array:
  """d logits[b, targets[b]] / d x[b] for every b in one pass -> `x`'s shape."""
  return jax.grad(lambda x: jnp.sum(pick(f(x), targets)))(x)


def chunked_sum(
  fn: Callable[[Any], Any], xs: Any, batch_size: int | None, batch: Array | None = None
) -> Any:
  """`sum_i fn(xs[i])` over the leading axis of the pytree `xs`, `batch_size` items at a time.

  Each chunk runs as one `jax.vmap`; chunks run one after another in a `lax.scan` that carries
  the running sum, so peak memory grows with `batch_size`, not with the number of items. When
  n is not a multiple of batch_size the last chunk is padded (with copies of item 0) and the
  padding masked out of the sum: one compiled body, at most batch_size - 1 wasted items.
  `None` runs all items at once.

  `batch` `[B, ...]`: the inputs whose maps `fn` returns; the running sums of outputs with a
  leading axis of size B start from zeros tied to it, so they keep its sharding. Zeros from a
  constant carry come back replicated from a scan over a batch sharded across devices.
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
  zero = jax.tree.map(lambda s: _zeros_like_batch(s, batch), jax.eval_shape(fn, item))
  return jax.lax.scan(add_chunk, zero, (chunks, valid))[0]


def _zeros_like_batch(s: jax.ShapeDtypeStruct, batch: Array | None) -> Array:
  """Zeros of `s`; when `s` is per sample of `batch`, computed from it (0 * one finite value
  per sample), which XLA's sharding propagation follows and a constant does not."""
  zeros = jnp.zeros(s.shape, s.dtype)
  if batch is None or not s.shape or s.shape[0] != batch.shape[0]:
    return zeros
  anchor = 0 * jnp.nan_to_num(batch.reshape(batch.shape[0], -1)[:, 0]).astype(s.dtype)
  return zeros + anchor.reshape(-1, *(1,) * (len(s.shape) - 1))


def spatial_axes(x: Array) -> tuple[int, ...]:
  """Axes of the spatial dims of a channels-last `[B, *spatial, C]` array."""
  return tuple(range(1, x.ndim - 1))


def resize_spatial(maps: Array, spatial: tuple[int, ...]) -> Array:
  """Bi/trilinear resize of `maps [B, *spatial', ...]` to `[B, *spatial, ...]`."""
  shape = (maps.shape[0], *spatial, *maps.shape[1 + len(spatial) :])
  return jax.image.resize(maps, shape, method="linear")
