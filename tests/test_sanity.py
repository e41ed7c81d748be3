"""Tests for bugnist_jax.saliency.sanity: similarity measures and randomisation tests."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from bugnist_jax.saliency import sanity as S


def test_spearman_matches_scipy():
  rng = np.random.default_rng(0)
  a = rng.normal(size=(3, 6, 7)).astype(np.float32)
  b = (a + rng.normal(size=a.shape)).astype(np.float32)
  b[2] = rng.normal(size=(6, 7))
  ties = np.round(a * 2) / 2  # many ties: checks the average ranks
  got = S.spearman(jnp.asarray(a), jnp.asarray(b))
  got_abs = S.spearman(jnp.asarray(a), jnp.asarray(b), absolute=True)
  got_ties = S.spearman(jnp.asarray(ties), jnp.asarray(b))
  for i in range(3):
    np.testing.assert_allclose(got[i], stats.spearmanr(a[i].ravel(), b[i].ravel())[0], atol=1e-5)
    np.testing.assert_allclose(
      got_abs[i], stats.spearmanr(np.abs(a[i]).ravel(), np.abs(b[i]).ravel())[0], atol=1e-5
    )
    np.testing.assert_allclose(
      got_ties[i], stats.spearmanr(ties[i].ravel(), b[i].ravel())[0], atol=1e-5
    )


@pytest.mark.parametrize("shape", [(2, 12, 12), (2, 8, 8, 6)])
def test_ssim_identity_and_noise(shape):
  rng = np.random.default_rng(0)
  a = jnp.asarray(np.maximum(rng.normal(size=shape) + 0.5, 0), jnp.float32)
  np.testing.assert_allclose(S.ssim(a, a), 1.0, rtol=1e-5)
  np.testing.assert_allclose(S.ssim(a, 3 * a + 1), 1.0, rtol=1e-5)  # min-max normalised
  noise = jnp.asarray(rng.normal(size=shape), jnp.float32)
  scores = [S.ssim(a, a + s * noise) for s in (0.1, 0.5, 2.0)]
  assert (scores[0] < 1 - 1e-3).all()
  assert (scores[0] > scores[1]).all() and (scores[1] > scores[2]).all()
  # absolute variant: a sign flip is invisible to it, not to the signed one
  signed = a - 0.5
  np.testing.assert_allclose(S.ssim(signed, -signed, absolute=True), 1.0, rtol=1e-5)
  assert (S.ssim(signed, -signed) < 0.5).all()


def test_compare_maps_under_jit():
  a = jnp.asarray(np.random.default_rng(2).normal(size=(2, 6, 6, 4)), jnp.float32)
  out = jax.jit(S.compare_maps)(a, -a)
  assert set(out) == {"spearman", "spearman_abs", "ssim", "ssim_abs"}
  np.testing.assert_allclose(out["spearman"], -1.0, atol=1e-5)
  np.testing.assert_allclose(out["spearman_abs"], 1.0, atol=1e-5)
  np.testing.assert_allclose(out["ssim_abs"], 1.0, atol=1e-5)


def tiny_cnn(seed, spatial, classes=3):
  """A two-layer CNN as a params dict: 'conv' (3x..x3, 1->4 channels, ReLU), 'logits'."""
  rng = np.random.default_rng(seed)
  nd = len(spatial)
  params = {
    "conv": {"kernel": rng.normal(size=(3,) * nd + (1, 4)) * 0.5, "bias": np.zeros(4)},
    "logits": {
      "kernel": rng.normal(size=(4 * int(np.prod(spatial)), classes)) * 0.1,
      "bias": np.zeros(classes),
    },
  }
  params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params)
  dims = "DHW"[-nd:]
  spec = ("N" + dims + "C", dims + "IO", "N" + dims + "C")

  def apply(params, x):
    h = jax.lax.conv_general_dilated(
      x, params["conv"]["kernel"], (1,) * nd, "SAME", dimension_numbers=spec
    )
    h = jax.nn.relu(h + params["conv"]["bias"])
    return h.reshape(x.shape[0], -1) @ params["logits"]["kernel"] + params["logits"]["bias"]

  return params, apply


@pytest.mark.parametrize("spatial", [(8, 8), (6, 6, 4)])
def test_cascading_randomization_gradient(spatial):
  params, apply = tiny_cnn(0, spatial)
  x = jnp.asarray(np.random.default_rng(1).normal(size=(2, *spatial, 1)), jnp.float32)

  @jax.jit
  def explain(params, x):
    # vanilla gradient of the predicted class, channel axis reduced
    t = jnp.argmax(apply(params, x), -1)
    g = jax.grad(lambda x: jnp.sum(jnp.take_along_axis(apply(params, x), t[:, None], 1)))(x)
    return g[..., 0]

  out = S.cascading_randomization(explain, params, ["logits", "conv"], x, key=jax.random.key(5))
  assert out["layers"] == ["original", "logits", "conv"]
  for name in ("spearman", "spearman_abs", "ssim", "ssim_abs"):
    assert out[name].shape == (3, 2)
    np.testing.assert_allclose(out[name][0], 1.0, rtol=1e-5)
    assert (out[name][1:] < 0.99).all(), name
  # independent randomisation of the top layer is the first cascading step
  ind = S.independent_randomization(explain, params, ["logits", "conv"], x, key=jax.random.key(5))
  np.testing.assert_allclose(ind["spearman"][:2], out["spearman"][:2], rtol=1e-6)
  assert ind["ssim"].shape == (3, 2)


def test_randomize_keeps_other_layers_and_constants():
  params, _ = tiny_cnn(0, (4, 4))
  for reinit in (None, S.normal_like):
    check_randomized(params, S._randomize(params, ["logits"], jax.random.key(1), reinit))
  with pytest.raises(ValueError, match="layer_order"):
    S.cascading_randomization(
      lambda p, x: x[..., 0], params, ["nope"], jnp.zeros((1, 4, 4, 1)), key=jax.random.key(0)
    )


def check_randomized(params, new):
  np.testing.assert_array_equal(new["conv"]["kernel"], params["conv"]["kernel"])
  np.testing.assert_array_equal(new["logits"]["bias"], 0.0)  # zero bias stays a zero bias
  k_old, k_new = params["logits"]["kernel"], new["logits"]["kernel"]
  assert not np.allclose(k_old, k_new)
  np.testing.assert_allclose(k_new.std(), k_old.std(), rtol=0.2)
