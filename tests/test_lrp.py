"""`saliency.lrp` on its own: conservation, LRP-0 = input x gradient, every registered model
(planes convolution, fused argmax pool, batch norm), traced weights, bad arguments. Parity with
zennit is in test_saliency_zennit.py."""

import importlib.util
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from bugnist_jax import saliency
from bugnist_jax.models import MODELS, get_model, planes
from bugnist_jax.models.adapters import as_function

_spec = importlib.util.spec_from_file_location(
  "_saliency_models", Path(__file__).with_name("test_saliency.py")
)
models = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(models)
TARGETS = jnp.array([0, 2, 1])


@pytest.fixture(scope="module", params=["2d", "3d"])
def cnn(request, x64):
  return models.model((8, 8), cin=2) if request.param == "2d" else models.model((4, 6, 6), cin=1)


def _bias_free(m):
  params = {k: v * 0 if k.startswith("b") else v for k, v in m.params.items()}
  return lambda x: models.head(params, models.features(params, x))


@pytest.mark.parametrize("rule", saliency.LRP_RULES + saliency.LRP_COMPOSITES)
def test_relevance_is_conserved_without_biases(cnn, rule):
  """Relevance sums to the target logit on a bias-free ReLU network (epsilon -> 0 for the
  epsilon rule; the other rules conserve up to their stabiliser)."""
  f = _bias_free(cnn)
  logit = np.take_along_axis(np.asarray(f(cnn.x)), np.asarray(TARGETS)[:, None], 1)[:, 0]
  relevance = saliency.lrp(f, cnn.x, TARGETS, rule=rule, epsilon=1e-12, stabilizer=1e-12)
  total = np.asarray(relevance).reshape(len(TARGETS), -1).sum(1)
  np.testing.assert_allclose(total, logit, rtol=1e-6)


def test_lrp_zero_is_input_times_gradient(cnn):
  """With biases too: for ReLU networks epsilon-LRP with epsilon -> 0 is x * grad."""
  ours = saliency.lrp(cnn.f, cnn.x, TARGETS, epsilon=1e-12)
  ixg = saliency.input_x_gradient(cnn.f, cnn.x, TARGETS)
  np.testing.assert_allclose(ours, ixg, rtol=1e-6, atol=1e-9 * np.abs(ixg).max())
  gamma = saliency.lrp(cnn.f, cnn.x, TARGETS, rule="gamma", gamma=1.0)
  assert not np.allclose(gamma, ixg, atol=1e-3 * np.abs(ixg).max())  # the rule matters


def test_several_targets_and_traced_weights(cnn):
  many = jnp.stack([TARGETS, (TARGETS + 1) % 3], 1)
  maps = saliency.lrp(cnn.f, cnn.x, many, rule="epsilon_plus")
  np.testing.assert_allclose(
    maps[:, 1], saliency.lrp(cnn.f, cnn.x, many[:, 1], rule="epsilon_plus")
  )

  @jax.jit
  def explain(params, x):  # the weights are tracers of this jit, as in the sanity study
    return saliency.lrp(lambda v: models.head(params, models.features(params, v)), x, TARGETS)

  np.testing.assert_allclose(
    explain(cnn.params, cnn.x), saliency.lrp(cnn.f, cnn.x, TARGETS), rtol=1e-10
  )


@pytest.mark.parametrize(
  # LeNet-5's tanh passes the relevance unchanged where the gradient scales it by tanh': the
  # two maps differ by construction (ReLU's pass rule and gradient agree where it is active).
  "name",
  sorted(n for n in MODELS if n != "lenet5"),
)
def test_every_model_with_its_default_layers(name):
  """LRP-epsilon traced as explain traces it (`planes.reference()`: XLA's convolutions; the
  fused ReLU + argmax pool is still a custom VJP the rewrite enters), through VGG's batch norm,
  ResNet's shortcuts and DenseNet's concatenations, is close to input x gradient of the CPU
  fast path (the same function) in float32. The BugNIST CNN is built on that path ('planes',
  which the suite's 'auto' is not); the families' tiny builds use XLA's convolution."""
  spec = MODELS[name]
  fast_path = {"conv_impl": "planes"} if name == "bugcnn3d" else {}
  model = get_model(
    name,
    input_shape=spec.test_input_shape,
    in_channels=spec.test_in_channels,
    num_classes=3,
    rngs=nnx.Rngs(0),
    **(dict(spec.test_kwargs) | fast_path),
  )
  f = as_function(model)
  x = jnp.asarray(
    np.random.default_rng(0).normal(size=(2, *spec.test_input_shape, spec.test_in_channels)),
    jnp.float32,
  )
  t = jnp.array([0, 1])
  with planes.reference():
    ours = np.asarray(saliency.lrp(lambda v: f(v), x, t, epsilon=1e-9, stabilizer=1e-9))
  ixg = np.asarray(saliency.input_x_gradient(f, x, t))
  assert np.abs(ixg).max() > 0
  np.testing.assert_allclose(ours, ixg, atol=1e-3 * np.abs(ixg).max())


def test_bad_arguments_and_unreachable_primitives(cnn):
  with pytest.raises(ValueError, match="rule"):
    saliency.lrp(cnn.f, cnn.x, rule="lrp")
  with pytest.raises(ValueError, match="first_rule"):
    saliency.lrp(cnn.f, cnn.x, first_rule="flat")
  with pytest.raises(ValueError, match="alpha"):
    saliency.lrp(cnn.f, cnn.x, rule="alpha_beta", alpha=2.0, beta=2.0)

  def looped(x):
    n = jnp.sum(x > 0)  # a traced trip count: a while loop reading the input
    return jax.lax.fori_loop(0, n, lambda i, h: jax.nn.relu(h) - 0.1, cnn.f(x))

  with pytest.raises(ValueError, match="'while'"):
    saliency.lrp(looped, cnn.x)
