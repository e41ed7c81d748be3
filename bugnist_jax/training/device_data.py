"""Device-resident training: the whole uint8 dataset on the accelerator, one jitted epoch.

BugNIST's 9154 volumes of 128x64x64 are 4.8 GB as uint8, so they fit on one accelerator. Then
shuffling (a `jax.random` permutation per epoch), augmentation (flips and rot90, in jnp) and
the batch gather all run on the device inside one `lax.scan` over the epoch's batches, and the
host input pipeline is out of the way. grain stays the streaming path for data that does not fit.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax

from bugnist_jax import compile

TrainStep = Callable[[object, dict], tuple[object, dict]]


def epoch_plan(key: jax.Array, num_examples: int, batch_size: int) -> tuple[jax.Array, jax.Array]:
  """Indices [steps, batch_size] of a shuffled epoch (remainder dropped) and one key per step."""
  steps = num_examples // batch_size
  if steps == 0:
    raise ValueError(f"batch_size {batch_size} is larger than the dataset ({num_examples})")
  perm_key, aug_key = jax.random.split(key)
  perm = jax.random.permutation(perm_key, num_examples)[: steps * batch_size]
  return perm.reshape(steps, batch_size), jax.random.split(aug_key, steps)


def augment(key: jax.Array, images: jax.Array) -> jax.Array:
  """Random flips of every spatial axis and a random rot90 of the last two (if square).

  images [B, *spatial, C] (any dtype) -> the same shape; each sample draws its own transform.
  """
  spatial = images.ndim - 2

  def one(key, x):  # x [*spatial, C]
    flip_key, rot_key = jax.random.split(key)
    flips = jax.random.bernoulli(flip_key, 0.5, (spatial,))
    for axis in range(spatial):
      x = jnp.where(flips[axis], jnp.flip(x, axis), x)
    if x.shape[-3] == x.shape[-2]:  # rot90 keeps the shape only in a square plane
      k = jax.random.randint(rot_key, (), 0, 4)
      rotations = [jnp.rot90(x, i, axes=(spatial - 2, spatial - 1)) for i in range(4)]
      x = jnp.select([k == i for i in range(4)], rotations)
    return x

  return jax.vmap(one)(jax.random.split(key, images.shape[0]), images)


def make_batch(
  images: jax.Array, labels: jax.Array, indices: jax.Array, key: jax.Array, augmented: bool
) -> dict:
  """The batch at `indices` [B]: image uint8 [B, *spatial, C] (augmented with `key`), label [B]."""
  batch_images = images[indices]
  if augmented:
    batch_images = augment(key, batch_images)
  return {"image": batch_images, "label": labels[indices]}


def make_epoch_fn(train_step: TrainStep, *, batch_size: int, augmented: bool = True) -> Callable:
  """Returns epoch(state, images, labels, key) -> (state, metrics [steps]), compiled.

  `train_step(state, batch) -> (state, metrics)` (e.g. `steps.make_train_step(...)`) runs once
  per batch inside a `lax.scan`; images uint8 [N, *spatial, C] and labels [N] live on the
  device. The state is donated. Same result as feeding `make_batch` of `epoch_plan`'s rows one
  by one.
  """

  def epoch(state, images, labels, key):
    indices, keys = epoch_plan(key, images.shape[0], batch_size)

    def body(state, step):
      batch = make_batch(images, labels, step[0], step[1], augmented)
      return train_step(state, batch)

    return lax.scan(body, state, (indices, keys))

  return compile.jit(epoch, donate_argnums=0)
