"""The baseline option: named in raw intensity, turned into model inputs with the run's
normalisation, and the same array reaching IG, occlusion, feature ablation and the deletion /
insertion curves (checked on a linear model, where each method's answer is known exactly)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl import flags

from bugnist_jax import cli
from bugnist_jax.attribution import ExplainRequest, Options
from bugnist_jax.attribution.baselines import BASELINES, baseline
from bugnist_jax.attribution.methods import Explainer, run_method
from bugnist_jax.data.transforms import Normalization
from bugnist_jax.models.adapters import Bound

NORM = Normalization(mean=0.2, std=0.1)  # raw intensity 0 is model input -2, 255 is 8
X = jnp.asarray(np.random.default_rng(0).normal(size=(2, 4, 4, 1)), jnp.float32)
W = jnp.asarray(np.random.default_rng(1).normal(size=(4, 4, 1)), jnp.float32)
TARGETS = jnp.asarray([0, 1])


def _linear(x):
  """Two logits, +-<w, x>: [B, 4, 4, 1] -> [B, 2]."""
  s = (x * W).sum((1, 2, 3))
  return jnp.stack([s, -s], -1)


BOUND = Bound(f=_linear, features=None, head=None, forward=None, layer="none")


def test_each_baseline_is_stated_in_raw_intensity():
  np.testing.assert_allclose(baseline("mean", X, NORM, 1.0, 0), 0.0)
  np.testing.assert_allclose(baseline("zero", X, NORM, 1.0, 0), -2.0, rtol=1e-6)
  flat = jnp.full_like(X, 3.0)
  np.testing.assert_allclose(baseline("blur", flat, NORM, 1.5, 0)[0], flat, rtol=1e-5)
  assert not np.allclose(baseline("blur", X, NORM, 1.5, 0)[0], X)
  noise = np.asarray(baseline("noise", X, NORM, 1.0, 0, draws=3))
  assert noise.shape == (3, *X.shape) and noise.min() >= -2.0 and noise.max() <= 8.0
  assert noise.std() > 1.0  # spread over the intensity range, not a constant
  np.testing.assert_array_equal(noise, baseline("noise", X, NORM, 1.0, 0, draws=3))
  assert not np.allclose(noise, baseline("noise", X, NORM, 1.0, 1, draws=3))
  with pytest.raises(ValueError, match="baseline: expected one of"):
    baseline("air", X, NORM, 1.0, 0)


@pytest.mark.parametrize("name", BASELINES)
def test_ig_occlusion_and_ablation_start_from_the_chosen_baseline(name):
  opts = Options(baseline=name, blur_sigma=1.0, steps=2, window=1, stride=1)
  base = baseline(name, X, NORM, 1.0, 0)[0]
  sign = jnp.asarray([1.0, -1.0])[:, None, None, None]
  expected = (X - base) * W * sign  # every one of them, for a linear model and 1-voxel windows
  for method in ("integrated_gradients", "occlusion", "feature_ablation"):
    found = run_method(BOUND, method, X, TARGETS, opts, NORM)
    np.testing.assert_allclose(found, expected, rtol=1e-4, atol=1e-5, err_msg=method)


def test_the_curves_hide_voxels_behind_the_baseline():
  opts = Options(baseline="zero")
  maps = jnp.abs(X[..., 0])
  curves = Explainer(BOUND, NORM).curves(maps, X, TARGETS, opts, num_steps=2)
  p_input = jax.nn.softmax(_linear(X))[jnp.arange(2), TARGETS]
  p_base = jax.nn.softmax(_linear(jnp.full_like(X, -2.0)))[jnp.arange(2), TARGETS]
  deletion, insertion = curves["deletion"][0], curves["insertion"][0]
  np.testing.assert_allclose(deletion[:, 0], p_input, rtol=1e-5)
  np.testing.assert_allclose(deletion[:, -1], p_base, rtol=1e-5)
  np.testing.assert_allclose(insertion[:, 0], p_base, rtol=1e-5)
  np.testing.assert_allclose(insertion[:, -1], p_input, rtol=1e-5)


def test_the_explain_flags_carry_the_baseline_and_the_curves():
  values = flags.FlagValues()
  cli.define_dataclass(ExplainRequest, values)
  values(["explain", "--baseline=blur", "--blur_sigma=2", "--curves=10"])
  request = cli.from_flags(ExplainRequest, values)
  assert request.curves == 10 and request.options.baseline == "blur"
  assert request.options.blur_sigma == 2.0
  with pytest.raises(flags.IllegalFlagValueError, match="air"):
    values(["explain", "--baseline=air"])
