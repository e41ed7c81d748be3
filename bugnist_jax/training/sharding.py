"""Data parallelism over all local devices with jax.sharding: batch split, state replicated."""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from bugnist_jax.errors import UserError


def data_mesh(devices=None) -> Mesh:
  """A 1D mesh named 'data' over `devices` (default: every device of every host)."""
  return Mesh(np.array(devices or jax.devices()), ("data",))


def check_batch_size(batch_size: int, mesh: Mesh, field: str) -> None:
  if batch_size % mesh.size:
    raise UserError(f"{field}: {batch_size} is not divisible by the {mesh.size} devices")


def replicate(tree, mesh: Mesh):
  """Puts every leaf of `tree` on all devices of `mesh`."""
  return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def shard_batch(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """Splits every array of a host-local batch along axis 0 over the mesh's 'data' axis."""
  sharding = NamedSharding(mesh, PartitionSpec("data"))
  if jax.process_count() == 1:
    return jax.device_put(batch, sharding)
  return jax.tree.map(
    lambda x: jax.make_array_from_process_local_data(sharding, x), batch
  )  # multi-host: each host feeds its own slice of the global batch
