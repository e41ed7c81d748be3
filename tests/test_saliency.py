"""Tests of bugnist_jax.saliency on tiny 2D and 3D CNNs written in plain JAX (float64)."""

import subprocess
import sys
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bugnist_jax import saliency
from bugnist_jax.saliency.gradients import _smoothgrad_from_noise

pytestmark = pytest.mark.usefixtures("x64")  # float64 here, for tight comparisons


# --- the test models: conv(3, SAME) relu maxpool(2) conv(3, SAME) relu | flatten dense ---


def conv(x, kernel, bias):
  """Channels-last 'SAME' convolution; kernel HWIO or DHWIO."""
  dn = ("NHWC", "HWIO", "NHWC") if x.ndim == 4 else ("NDHWC", "DHWIO", "NDHWC")
  strides = (1,) * (x.ndim - 2)
  return jax.lax.conv_general_dilated(x, kernel, strides, "SAME", dimension_numbers=dn) + bias


def maxpool(x):
  """2x max pool over every spatial dim, by reshape and max."""
  b, *spatial, c = x.shape
  x = x.reshape(b, *[n for s in spatial for n in (s // 2, 2)], c)
  return x.max(axis=tuple(range(2, 2 * len(spatial) + 1, 2)))


def features(params, x):
  """`[B, *spatial, Cin]` -> activations `[B, *spatial/2, C2]` (the CAM layer)."""
  x = maxpool(jax.nn.relu(conv(x, params["k1"], params["b1"])))
  return jax.nn.relu(conv(x, params["k2"], params["b2"]))


def head(params, acts):
  """Flatten (channels-last order) and a dense layer: `[B, *spatial', C2]` -> `[B, K]`."""
  return acts.reshape(acts.shape[0], -1) @ params["w"] + params["b"]


class CNN(NamedTuple):
  params: dict
  features: partial
  head: partial
  f: partial
  x: jax.Array


def model(spatial, cin, channels=(3, 4), classes=3, batch=3, seed=0):
  """A CNN with random float64 weights and a random input batch `[batch, *spatial, cin]`."""
  rng = np.random.default_rng(seed)
  nd, (c1, c2) = len(spatial), channels
  flat = int(np.prod(spatial)) // 2**nd * c2
  params = {
    "k1": rng.normal(size=(3,) * nd + (cin, c1)) / np.sqrt(3**nd * cin),
    "b1": rng.normal(size=c1) * 0.1,
    "k2": rng.normal(size=(3,) * nd + (c1, c2)) / np.sqrt(3**nd * c1),
    "b2": rng.normal(size=c2) * 0.1,
    "w": rng.normal(size=(flat, classes)) / np.sqrt(flat),
    "b": rng.normal(size=classes) * 0.1,
  }
  params = {k: jnp.asarray(v) for k, v in params.items()}
  feats, hd = partial(features, params), partial(head, params)
  f = partial(lambda p, x: head(p, features(p, x)), params)
  x = jnp.asarray(rng.normal(size=(batch, *spatial, cin)))
  return CNN(params, feats, hd, f, x)


@pytest.fixture(scope="module")
def cnn2d(x64):
  return model((8, 8), cin=2)


@pytest.fixture(scope="module")
def cnn3d(x64):
  return model((4, 6, 6), cin=1)


@pytest.fixture(scope="module", params=["2d", "3d"])
def cnn(request, cnn2d, cnn3d):
  return cnn2d if request.param == "2d" else cnn3d


TARGETS = jnp.array([0, 2, 1])


# --- gradients ---


def test_vanilla_gradient_matches_central_differences(cnn):
  grads = np.asarray(saliency.vanilla_gradient(cnn.f, cnn.x, TARGETS))
  score = lambda x: float(jnp.sum(jnp.take_along_axis(cnn.f(x), TARGETS[:, None], 1)))
  rng, eps = np.random.default_rng(1), 1e-6
  for flat in rng.choice(cnn.x.size, 12, replace=False):
    index = np.unravel_index(flat, cnn.x.shape)
    step = jnp.zeros_like(cnn.x).at[index].set(eps)
    numeric = (score(cnn.x + step) - score(cnn.x - step)) / (2 * eps)
    np.testing.assert_allclose(grads[index], numeric, rtol=1e-5, atol=1e-8)


def test_input_x_gradient_and_default_targets(cnn2d):
  predicted = jnp.argmax(cnn2d.f(cnn2d.x), axis=-1)
  grads = saliency.vanilla_gradient(cnn2d.f, cnn2d.x)
  np.testing.assert_array_equal(grads, saliency.vanilla_gradient(cnn2d.f, cnn2d.x, predicted))
  np.testing.assert_allclose(
    saliency.input_x_gradient(cnn2d.f, cnn2d.x, predicted), cnn2d.x * grads, rtol=1e-12
  )


def test_smoothgrad_sigma_zero_key_reproducibility_and_chunking(cnn2d):
  """Noise from the key: zero noise gives the gradient (to rounding: the mean of 7 copies), same
  key same map, and noisy copy i is the same however the copies are chunked (7 = 3 + 3 + 1)."""
  run = lambda key, sigma, batch_size=3: saliency.smoothgrad(
    cnn2d.f,
    cnn2d.x,
    TARGETS,
    key=jax.random.key(key),
    num_samples=7,
    sigma=sigma,
    batch_size=batch_size,
  )
  grads = saliency.vanilla_gradient(cnn2d.f, cnn2d.x, TARGETS)
  np.testing.assert_allclose(run(0, 0.0), grads, rtol=1e-6, atol=1e-6 * np.abs(grads).max())
  a = run(5, 0.3)
  assert not np.allclose(a, grads)
  np.testing.assert_array_equal(run(5, 0.3), a)
  assert not np.allclose(run(6, 0.3), a)
  np.testing.assert_allclose(run(5, 0.3, batch_size=None), a, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize(
  "num_samples,kind,batch_sizes", [(8, "smoothgrad", (1, 3, 8)), (7, "vargrad", (3, 8))]
)
def test_smoothgrad_does_not_depend_on_batch_size(cnn2d, num_samples, kind, batch_sizes):
  # Explicit noise: compiling the random draws is slow on CPU, and the key path is checked
  # above; this checks the chunked accumulation (8 = 1 * 8 = 3 + 3 + 2, 7 = 3 + 3 + 1).
  noise = 0.3 * jax.random.normal(jax.random.key(3), (num_samples, *cnn2d.x.shape))
  run = lambda batch_size: _smoothgrad_from_noise(
    cnn2d.f, cnn2d.x, TARGETS, noise=noise, batch_size=batch_size, kind=kind
  )
  reference = run(None)
  assert not np.allclose(reference, 0)
  for batch_size in batch_sizes:
    np.testing.assert_allclose(run(batch_size), reference, rtol=1e-10, atol=1e-14)


def test_integrated_gradients_completeness(cnn):
  baseline = 0.1 * jnp.ones_like(cnn.x)
  attr = saliency.integrated_gradients(cnn.f, cnn.x, TARGETS, baseline=baseline, steps=64)
  pick = lambda x: np.take_along_axis(np.asarray(cnn.f(x)), np.asarray(TARGETS)[:, None], 1)[:, 0]
  expected = pick(cnn.x) - pick(baseline)
  total = np.asarray(attr).reshape(len(TARGETS), -1).sum(axis=1)
  np.testing.assert_allclose(total, expected, rtol=0.01, atol=1e-3 * np.abs(expected).max())
  delta = saliency.completeness_delta(cnn.f, cnn.x, attr, TARGETS, baseline=baseline)
  np.testing.assert_allclose(delta, total - expected, rtol=1e-9, atol=1e-12)
  coarse = saliency.integrated_gradients(cnn.f, cnn.x, TARGETS, baseline=baseline, steps=1)
  coarse_delta = saliency.completeness_delta(cnn.f, cnn.x, coarse, TARGETS, baseline=baseline)
  assert np.abs(coarse_delta).max() > np.abs(delta).max()  # fewer steps miss more
  # Chunked, and jit-compiled by the caller with the static arguments named.
  jitted = jax.jit(
    saliency.integrated_gradients, static_argnums=0, static_argnames=("steps", "batch_size")
  )
  chunked = jitted(cnn.f, cnn.x, TARGETS, baseline=baseline, steps=64, batch_size=5)
  np.testing.assert_allclose(chunked, attr, rtol=1e-10, atol=1e-14)


# --- per-sample targets: a sample's map in a batch equals its map computed alone ---

PER_SAMPLE = {
  "vanilla": lambda m, x, t: saliency.vanilla_gradient(m.f, x, t),
  "ig": lambda m, x, t: saliency.integrated_gradients(m.f, x, t, steps=8, batch_size=3),
  "occlusion": lambda m, x, t: saliency.occlusion(m.f, x, t, window=3, stride=2, batch_size=4),
  "grad_cam": lambda m, x, t: saliency.grad_cam(m.features, m.head, x, t),
  "score_cam": lambda m, x, t: saliency.score_cam(m.features, m.head, x, t, batch_size=3),
  "guided": lambda m, x, t: saliency.guided_backprop(m.f, x, t),
}


def test_a_smoothgrad_map_does_not_depend_on_the_samples_after_it(cnn2d):
  run = lambda x, t: saliency.smoothgrad(cnn2d.f, x, t, key=jax.random.key(3), num_samples=3)
  batched = run(cnn2d.x, TARGETS)
  np.testing.assert_allclose(batched[:2], run(cnn2d.x[:2], TARGETS[:2]), rtol=1e-9, atol=1e-12)
  twice = run(cnn2d.x[jnp.array([0, 0])], TARGETS[jnp.array([0, 0])])
  assert not np.allclose(twice[0], twice[1])  # each sample draws noise of its own


@pytest.mark.parametrize("method", sorted(PER_SAMPLE))
def test_each_sample_map_equals_its_map_alone(cnn2d, method):
  run = PER_SAMPLE[method]
  batched = run(cnn2d, cnn2d.x, TARGETS)
  for b in range(len(TARGETS)):
    alone = run(cnn2d, cnn2d.x[b : b + 1], TARGETS[b : b + 1])
    np.testing.assert_allclose(batched[b : b + 1], alone, rtol=1e-9, atol=1e-12)
  other = run(cnn2d, cnn2d.x, (TARGETS + 1) % 3)
  assert not np.allclose(batched, other)  # the target does change the map


# --- CAMs ---


def test_grad_cam_matches_hand_computation(cnn):
  acts = np.asarray(cnn.features(cnn.x))  # [B, *spatial', C']
  b = len(TARGETS)
  # head is flatten + dense, so d logit_t / dA is column t of w laid out like A.
  d_logit = np.asarray(cnn.params["w"]).T[np.asarray(TARGETS)].reshape(acts.shape)
  weights = d_logit.mean(axis=tuple(range(1, acts.ndim - 1)))  # [B, C']
  hand = np.maximum((acts * weights.reshape(b, *(1,) * (acts.ndim - 2), -1)).sum(-1), 0)
  cam = saliency.grad_cam(cnn.features, cnn.head, cnn.x, TARGETS, upsample=False)
  np.testing.assert_allclose(cam, hand, rtol=1e-10, atol=1e-12)
  resized = jax.image.resize(hand, (b, *cnn.x.shape[1:-1]), method="linear")
  np.testing.assert_allclose(
    saliency.grad_cam(cnn.features, cnn.head, cnn.x, TARGETS), resized, rtol=1e-10, atol=1e-12
  )


CAMS = {
  "grad_cam": saliency.grad_cam,
  "grad_cam_plus_plus": saliency.grad_cam_plus_plus,
  "layer_cam": saliency.layer_cam,
  "score_cam": partial(saliency.score_cam, batch_size=3),
  "is_cam": partial(saliency.is_cam, steps=2, batch_size=5),
}


@pytest.mark.parametrize("name", sorted(CAMS))
def test_cam_shapes_are_the_input_spatial_shape(cnn, name):
  cam = CAMS[name](cnn.features, cnn.head, cnn.x, TARGETS)
  assert cam.shape == cnn.x.shape[:-1]
  assert np.all(np.asarray(cam) >= 0) and np.any(np.asarray(cam) > 0)


def test_guided_grad_cam_is_guided_backprop_times_cam(cnn3d):
  m = cnn3d
  ggc = saliency.guided_grad_cam(m.features, m.head, m.x, TARGETS)
  expected = (
    saliency.guided_backprop(m.f, m.x, TARGETS)
    * saliency.grad_cam(m.features, m.head, m.x, TARGETS)[..., None]
  )
  assert ggc.shape == m.x.shape
  np.testing.assert_allclose(ggc, expected, rtol=1e-10, atol=1e-14)


def test_score_cam_does_not_depend_on_batch_size(cnn2d):
  m = cnn2d
  reference = saliency.is_cam(m.features, m.head, m.x, TARGETS, steps=3)
  chunked = saliency.is_cam(m.features, m.head, m.x, TARGETS, steps=3, batch_size=5)
  np.testing.assert_allclose(chunked, reference, rtol=1e-10, atol=1e-14)


# --- guided backprop ---

W1 = jnp.array([[1.0, -2.0, 0.5], [0.5, 1.0, -1.0], [-1.0, 0.5, 2.0], [2.0, 1.0, 1.0]])
W2 = jnp.array([[1.0, -1.0], [-2.0, 1.0], [3.0, 0.5]])


def one_relu(x, relu=jax.nn.relu):
  """`x [B, 2, 2, 1]` -> `[B, 2]`: dense(4 -> 3), relu, dense(3 -> 2)."""
  return relu(x.reshape(x.shape[0], -1) @ W1) @ W2


@pytest.mark.parametrize(
  "relu", [jax.nn.relu, lambda h: jnp.maximum(h, 0.0), jax.jit(lambda h: jnp.maximum(0, h))]
)
def test_guided_backprop_passes_only_positive_gradients(x64, relu):
  x = jnp.array([[1.0, 1.0, 1.0, 1.0], [1.0, -1.0, 0.5, 2.0]]).reshape(2, 2, 2, 1)
  targets = jnp.array([0, 1])
  f = partial(one_relu, relu=relu)
  hidden = np.asarray(x.reshape(2, -1) @ W1)  # pre-activations [B, 3]
  upstream = np.asarray(W2).T[np.asarray(targets)] * (hidden > 0)  # d logit_t / d h, [B, 3]
  vanilla = (upstream @ np.asarray(W1).T).reshape(x.shape)
  guided = (np.maximum(upstream, 0) @ np.asarray(W1).T).reshape(x.shape)
  assert not np.allclose(vanilla, guided)  # a negative gradient reaches an active ReLU
  np.testing.assert_allclose(saliency.vanilla_gradient(f, x, targets), vanilla, rtol=1e-12)
  np.testing.assert_allclose(saliency.guided_backprop(f, x, targets), guided, rtol=1e-12)
  escape = saliency.guided_backprop(one_relu, x, targets, relu_arg="relu")
  np.testing.assert_allclose(escape, guided, rtol=1e-12)


def test_guided_backprop_rejects_models_it_cannot_rewrite(x64):
  x = jnp.ones((2, 2, 2, 1))
  with pytest.raises(ValueError, match="no ReLU"):
    saliency.guided_backprop(partial(one_relu, relu=jnp.tanh), x)

  def looped(x):
    h = x.reshape(x.shape[0], -1) @ W1
    n = jnp.sum(x > 0)  # traced trip count: a while loop
    return jax.lax.fori_loop(0, n, lambda i, h: jax.nn.relu(h) - 0.1, h) @ W2

  with pytest.raises(ValueError, match="'while'"):
    saliency.guided_backprop(looped, x)


# --- occlusion ---


@pytest.mark.parametrize(
  "spatial,window,stride", [((5, 5), (2, 2), (1, 1)), ((5, 4, 3), (3, 2, 2), (2, 2, 2))]
)
def test_occlusion_on_a_linear_model_matches_hand_computation(x64, spatial, window, stride):
  rng = np.random.default_rng(2)
  x = rng.normal(size=(2, *spatial, 2))
  w = rng.normal(size=(x[0].size, 3))
  f = lambda x: x.reshape(x.shape[0], -1) @ w
  targets, baseline = np.array([2, 0]), 0.5
  # By hand: a window's drop is sum over its voxels of (x - baseline) * w_t; every voxel
  # averages the drops of the windows covering it (windows clipped at the far edges).
  contrib = (x - baseline) * w.T[targets].reshape(x.shape)
  total, count = np.zeros(x.shape), np.zeros(x.shape)
  starts = [
    range(0, max(s - k, 0) + st, st) for s, k, st in zip(spatial, window, stride, strict=True)
  ]
  for origin in np.stack(np.meshgrid(*starts, indexing="ij"), -1).reshape(-1, len(spatial)):
    box = (
      slice(None),
      *(slice(o, o + k) for o, k in zip(origin, window, strict=True)),
      slice(None),
    )
    total[box] += contrib[box].sum(axis=tuple(range(1, x.ndim)), keepdims=True)
    count[box] += 1
  attr = saliency.occlusion(
    f,
    jnp.asarray(x),
    jnp.asarray(targets),
    window=window,
    stride=stride,
    baseline=baseline,
    batch_size=4,
  )
  np.testing.assert_allclose(attr, total / count, rtol=1e-10)


# --- post-processing ---


def test_postprocess_helpers(x64):
  attr = jnp.asarray(np.random.default_rng(4).normal(size=(2, 6, 6, 3)))
  np.testing.assert_array_equal(saliency.select_sign(attr, "positive"), np.maximum(attr, 0))
  np.testing.assert_array_equal(saliency.select_sign(attr, "negative"), np.maximum(-attr, 0))
  np.testing.assert_allclose(saliency.reduce_channels(attr, "mean"), attr.mean(-1))
  np.testing.assert_allclose(saliency.reduce_channels(attr, "max_abs"), np.abs(attr).max(-1))
  clipped = np.asarray(saliency.clip_percentile(attr, 10, 90))
  for b in range(2):
    lo, hi = np.percentile(np.asarray(attr[b]), [10, 90])
    np.testing.assert_allclose([clipped[b].min(), clipped[b].max()], [lo, hi])
  scaled = np.asarray(saliency.normalize(attr * jnp.array([1.0, 100.0]).reshape(2, 1, 1, 1)))
  np.testing.assert_allclose(scaled.min(axis=(1, 2, 3)), 0)
  np.testing.assert_allclose(scaled.max(axis=(1, 2, 3)), 1)
  heat = saliency.to_heatmap(attr)
  assert heat.shape == (2, 6, 6) and float(heat.min()) >= 0 and float(heat.max()) == 1
  with pytest.raises(ValueError, match="how"):
    saliency.reduce_channels(attr, "median")


def test_bad_arguments_raise_one_clear_error(cnn2d):
  m = cnn2d
  with pytest.raises(ValueError, match="kind"):
    saliency.smoothgrad(m.f, m.x, key=jax.random.key(0), num_samples=2, kind="sg")
  with pytest.raises(ValueError, match="targets"):
    saliency.vanilla_gradient(m.f, m.x, jnp.array([0, 1]))
  with pytest.raises(ValueError, match="window"):
    saliency.occlusion(m.f, m.x, window=(2, 2, 2), stride=1)
  with pytest.raises(ValueError, match="x:"):
    saliency.vanilla_gradient(m.f, m.x[0])


def test_package_imports_only_jax_and_numpy():
  code = (
    "import sys, bugnist_jax.saliency\n"
    "bad = [m for m in sys.modules if m.split('.')[0] in ('flax', 'torch', 'optax')\n"
    "       or m.startswith(('bugnist_jax.models', 'bugnist_jax.training', 'bugnist_jax.data'))]\n"
    "assert not bad, bad\n"
    "ours = [m for m in sys.modules if m.startswith('bugnist_jax.')\n"
    "        and not m.startswith(('bugnist_jax.saliency', 'bugnist_jax.interrupts'))]\n"
    "assert not ours, ours  # nothing else of ours (the package's __init__ loads interrupts)\n"
  )
  subprocess.run([sys.executable, "-c", code], check=True)


def test_bfloat16_integrated_gradients_are_one_rounding_from_exact():
  w = jax.random.normal(jax.random.key(1), (6, 6, 1))
  f = lambda x: (x * w).sum((1, 2, 3))[:, None] * jnp.asarray([1.0, -1.0], x.dtype)
  x = jax.random.normal(jax.random.key(2), (2, 6, 6, 1)).astype(jnp.bfloat16)
  ig = saliency.integrated_gradients(f, x, jnp.asarray([0, 1]), steps=32, batch_size=1)
  assert ig.dtype == jnp.bfloat16
  w16 = w.astype(jnp.bfloat16).astype(jnp.float32)  # the gradient itself is bfloat16
  exact = x.astype(jnp.float32) * w16 * jnp.asarray([1.0, -1.0])[:, None, None, None]
  # Weights and sum kept in float32: only the final rounding (2^-9); summing 32 bfloat16
  # terms instead drifts by ~1 %.
  np.testing.assert_allclose(ig.astype(jnp.float32), exact, rtol=2.0**-8)
