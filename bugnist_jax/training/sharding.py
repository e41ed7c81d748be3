"""Data parallelism over every device of every process with jax.sharding: batch split, state
replicated. With several processes (`jax.distributed.initialize`), each feeds its own rows of
the global batch and `gather` brings results back to every process."""

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def data_mesh(devices=None) -> Mesh:
  """A 1D mesh named 'data' over `devices` (default: every device of every host)."""
  return Mesh(np.array(devices or jax.devices()), ("data",))


def replicate(tree, mesh: Mesh):
  """Puts every leaf of `tree` on all devices of `mesh` (with several processes, each passes
  the same host-local values)."""
  sharding = NamedSharding(mesh, PartitionSpec())
  if jax.process_count() == 1:
    return jax.device_put(tree, sharding)

  def global_array(x):  # device_put cannot target other processes' devices
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):  # nnx.Rngs keys: via their data
      data = global_array(jax.random.key_data(x))
      return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

  return jax.tree.map(global_array, tree)


def shard_batch(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """Splits every array of a host-local batch along axis 0 over the mesh's 'data' axis."""
  sharding = NamedSharding(mesh, PartitionSpec("data"))
  if jax.process_count() == 1:
    return jax.device_put(batch, sharding)
  return jax.tree.map(
    lambda x: jax.make_array_from_process_local_data(sharding, x), batch
  )  # multi-host: each host feeds its own slice of the global batch


def gather(x) -> np.ndarray:
  """Every process's rows of `x` along axis 0, in process order, as numpy on every process:
  a host-local batch `[b, ...]` -> `[P * b, ...]`, a global array (e.g. logits of a sharded
  batch) -> all of it. One process: `np.asarray(x)`."""
  if jax.process_count() == 1:
    return np.asarray(x)
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def any_process(flag: bool) -> bool:
  """True on every process if `flag` is True on any (e.g. a stop request one host received)."""
  if jax.process_count() == 1:
    return bool(flag)
  return bool(gather(np.array([flag])).any())
