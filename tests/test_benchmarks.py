"""The benchmark harness on a tiny model, the analytic cost model, the device-resident epoch."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from benchmarks import harness, jax_cases, report
from benchmarks.measure import run_interleaved
from benchmarks.roofline import measure_peaks, model_cost
from bugnist_jax.models import get_model
from bugnist_jax.training import device_data
from bugnist_jax.training.steps import make_train_step

TINY = {"channels": (4, 6, 8, 8), "dense": 16}
SHAPE = (32, 16, 16)


def test_model_cost_matches_the_hand_count():
  cost = model_cost((128, 64, 64))
  assert cost["forward_flops"] == pytest.approx(3.63e9, rel=0.005)  # the figure
  # Training: forward + weight grads (= forward) + input grads of all but the first conv.
  assert cost["forward_flops"] * 2 < cost["train_flops"] < cost["forward_flops"] * 3
  assert cost["grad_flops"] == 2 * cost["forward_flops"]
  half = model_cost((64, 32, 32))
  assert half["forward_bytes"] == pytest.approx(cost["forward_bytes"] / 8, rel=0.01)


def test_harness_produces_every_field_and_the_plot(tmp_path):
  runners = [
    jax_cases.train_runner(SHAPE, 2, "planes", "argmax", model_kw=TINY),
    jax_cases.smoothgrad_runner(SHAPE, 2, "planes", "argmax", batch_size=2, model_kw=TINY),
  ]
  tc = harness.torch_module()
  if tc is not None:
    runners.append(tc.train_runner(SHAPE, 2, model_kw=TINY))
  results = run_interleaved(runners, repeats=2)
  peaks = measure_peaks(matmul_size=128, copy_mb=4)
  harness.add_derived(results, peaks, TINY)
  for r in results:
    assert r["rate_min"] <= r["rate_median"] <= r["rate_max"] and r["rate_min"] > 0
    assert len(r["times_s"]) == 2 and r["compile_s"] >= 0
    assert r["gflops_per_s"] > 0 and r["roofline"] > 0
  assert results[0]["xla_flops"] > 0 and results[0]["xla_buffers_mb"] > 0
  if tc is not None:
    assert results[0]["ratio_vs_best"] == pytest.approx(
      results[0]["rate_median"] / results[2]["rate_median"]
    )
    assert results[0]["ratio_vs_eager"] == results[0]["ratio_vs_best"]  # one torch config
  doc = json.loads(json.dumps({"peaks": peaks, "results": results}))
  assert doc["results"][1]["kind"] == "smoothgrad" and doc["results"][1]["num_samples"] == 2
  assert report.markdown(results).count("\n") == len(results) + 2
  report.plot(results, tmp_path / "scaling.png")
  assert (tmp_path / "scaling.png").read_bytes()[:4] == b"\x89PNG"


def test_augment_permutes_voxels_and_varies_per_sample():
  x = jnp.arange(2 * 4 * 6 * 6, dtype=jnp.int32).reshape(2, 4, 6, 6, 1)
  x = jnp.concatenate([x] * 8)  # 16 identical pairs: they must not all get the same transform
  y = device_data.augment(jax.random.key(0), x)
  assert y.shape == x.shape
  np.testing.assert_array_equal(np.sort(np.asarray(y[0]).ravel()), np.asarray(x[0]).ravel())
  assert len({np.asarray(y[i]).tobytes() for i in range(0, 16, 2)}) > 1


def test_epoch_plan_is_a_permutation():
  indices, keys = device_data.epoch_plan(jax.random.key(0), 10, 3)
  assert indices.shape == (3, 3) and keys.shape == (3,)
  assert len(set(np.asarray(indices).ravel().tolist())) == 9
  with pytest.raises(ValueError, match="batch_size"):
    device_data.epoch_plan(jax.random.key(0), 2, 3)


def test_device_epoch_equals_feeding_batches_one_by_one():
  model = get_model("bugcnn3d", input_shape=SHAPE, **TINY)
  optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
  graphdef, state = nnx.split((model, optimizer))
  rng = np.random.default_rng(0)
  images = jnp.asarray(rng.integers(0, 256, (7, *SHAPE, 1), dtype=np.uint8))
  labels = jnp.asarray(rng.integers(0, 12, 7, dtype=np.int32))
  step = make_train_step(graphdef, jax_cases.NORMALIZE)
  key = jax.random.key(3)

  looped = jax.tree.map(jnp.copy, state)
  indices, keys = device_data.epoch_plan(key, 7, 2)
  losses = []
  for i in range(indices.shape[0]):
    batch = device_data.make_batch(images, labels, indices[i], keys[i], True)
    looped, metrics = step(looped, batch)
    losses.append(float(metrics["loss"]))

  epoch = device_data.make_epoch_fn(step, batch_size=2)  # the compiled step nests in the scan
  state, metrics = epoch(state, images, labels, key)
  assert metrics["loss"].shape == (3,)
  np.testing.assert_allclose(np.asarray(metrics["loss"]), losses, rtol=1e-5)
  params = lambda s: jax.tree.leaves(nnx.State(s).filter(nnx.Param))
  for a, b in zip(params(state), params(looped), strict=True):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)


def test_method_rows_come_from_the_explain_table_and_time_captum_beside():
  from benchmarks import methods as bench
  from bugnist_jax.attribution import METHODS, Options

  every = bench.runners(SHAPE, model_kw=TINY, peers=False)  # built lazily: nothing runs yet
  assert [r.info["method"] for r in every] == list(METHODS)
  opts = Options(window=8, stride=8, batch_size=16, baseline="zero")
  peers = harness.torch_module() is not None
  results = run_interleaved(bench.runners(SHAPE, ("occlusion",), opts, model_kw=TINY), 1)
  assert [r["framework"] for r in results] == ["jax", *(["captum"] * peers)]
  assert all(r["rate_median"] > 0 for r in results)
  assert results[0]["options"]["baseline"] == "zero" and results[0]["options"]["window"] == 8
  table = bench.markdown(results)
  assert table.count("\n") == len(results) + 2
  assert table.splitlines()[2].endswith("x |") == peers  # the ratio to Captum, where it ran
