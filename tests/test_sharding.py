"""Data parallelism: the same steps on 4 simulated CPU devices and on 1 give the same model;
saliency maps of a sharded batch stay sharded."""

import os
import pathlib
import subprocess
import sys

SCRIPT = r"""
import jax, numpy as np, optax
from flax import nnx
from bugnist_jax.data.transforms import Normalization
from bugnist_jax.models import get_model
from bugnist_jax.training import sharding
from bugnist_jax.training.steps import make_train_step

assert jax.device_count() == 4, jax.devices()
rng = np.random.default_rng(0)
batches = [{"image": rng.integers(0, 255, (8, 32, 16, 16, 1), dtype=np.uint8),
            "label": rng.integers(0, 12, 8).astype(np.int32)} for _ in range(3)]
results = []
for devices in (jax.devices()[:1], jax.devices()):
  mesh = sharding.data_mesh(devices)
  model = get_model("bugcnn3d", input_shape=(32, 16, 16), channels=(2, 4, 4, 4), dense=8,
                    batch_norm=True, rngs=nnx.Rngs(0))
  graphdef, state = nnx.split((model, nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)))
  state = sharding.replicate(state, mesh)
  step = make_train_step(graphdef, Normalization(0.2, 0.3))
  for b in batches:
    sharded = sharding.shard_batch(b, mesh)
    assert len(sharded["image"].sharding.device_set) == len(devices)
    state, metrics = step(state, sharded)
  results.append(jax.device_get(nnx.state(nnx.merge(graphdef, state)[0], nnx.Param)))
  print(len(devices), "devices: loss", float(metrics["loss"]))
one, four = results
for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(four)):
  np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)
print("MATCH")

# Saliency on a batch sharded over the devices: maps come back sharded the same way.
from bugnist_jax import saliency
from bugnist_jax.models.adapters import as_function

mesh = sharding.data_mesh()
f = as_function(nnx.merge(graphdef, state)[0])
x = sharding.shard_batch({"x": np.random.default_rng(1).normal(size=(4, 32, 16, 16, 1))
                          .astype(np.float32)}, mesh)["x"]
# The chunked sums (a scan) too: a scan's carry started from constant zeros came back
# replicated (all of it on every device) with XLA's convolution. One method per kind of sum:
# the mean, the moments of the squared kinds, and per-window sums beside a per-voxel count.
key, chunk = jax.random.key(0), dict(batch_size=2)
for name, maps in {
  "vanilla_gradient": saliency.vanilla_gradient(f, x),
  "smoothgrad": saliency.smoothgrad(f, x, key=key, num_samples=4, **chunk),
  "vargrad": saliency.smoothgrad(f, x, key=key, num_samples=4, kind="vargrad", **chunk),
  "occlusion": saliency.occlusion(f, x, window=8, stride=8, **chunk),
}.items():
  assert maps.shape == x.shape, name
  assert maps.sharding.is_equivalent_to(x.sharding, x.ndim), (name, maps.sharding)
print("SHARDED")
"""


def test_four_simulated_devices_match_one(tmp_path):
  env = {
    **os.environ,
    "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
    "JAX_PLATFORMS": "cpu",
  }
  root = pathlib.Path(__file__).resolve().parents[1]
  out = subprocess.run(
    [sys.executable, "-c", SCRIPT], env=env, cwd=root, capture_output=True, text=True, timeout=600
  )
  assert out.returncode == 0, out.stderr[-3000:]
  assert "MATCH" in out.stdout
  assert "SHARDED" in out.stdout
