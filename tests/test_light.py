"""Light transforms against their formulas, and the light augmentation from config to step."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from bugnist_jax.config_defaults import base
from bugnist_jax.data import datasets, light, pipeline
from bugnist_jax.data.digits import ArraySource
from bugnist_jax.data.transforms import Normalization
from bugnist_jax.errors import UserError
from bugnist_jax.models import get_model
from bugnist_jax.training.steps import make_train_step


def _x(shape=(3, 5, 4, 2), seed=0):
  return np.random.default_rng(seed).random(shape).astype(np.float32)


def test_brightness_is_x_minus_mu_per_image():
  x = _x()
  np.testing.assert_allclose(light.brightness(x, 0.4), x - 0.4, rtol=1e-6)
  mu = np.array([-2.0, 0.0, 1.5], np.float32)
  np.testing.assert_allclose(light.brightness(x, mu), x - mu[:, None, None, None], rtol=1e-6)


@pytest.mark.parametrize("shape", [(3, 5, 4, 2), (2, 3, 4, 5, 1)])
def test_contrast_divides_the_deviation_from_the_image_mean(shape):
  x = _x(shape)
  sigma = np.array([0.1, 2.1, 3.9][: shape[0]], np.float32)
  got = np.asarray(light.contrast(x, sigma))
  for i in range(shape[0]):
    m = x[i].mean()  # over all pixels and channels
    np.testing.assert_allclose(got[i], (x[i] - m) / sigma[i] + m, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[i].mean(), m, rtol=1e-5)  # the mean is kept
  np.testing.assert_allclose(light.contrast(x, 1.0), x, atol=1e-6)


def test_brightness_and_contrast_commute():
  x = _x()
  a = light.brightness(light.contrast(x, 2.5), 0.7)
  b = light.contrast(light.brightness(x, 0.7), 2.5)
  np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_on_inputs_transforms_intensities_for_any_normalisation():
  images = np.random.default_rng(1).integers(0, 256, (2, 6, 6, 1), np.uint8)
  norm = Normalization(0.3, 0.2)
  inputs = norm(images)
  got = light.on_inputs(light.brightness, inputs, norm, 0.5)
  np.testing.assert_allclose(norm.invert(got), images / 255.0 - 0.5, rtol=1e-5, atol=1e-6)


def test_jitter_inputs_applies_the_batch_draws_or_nothing():
  norm = Normalization(0.0, 1.0, "unit")
  x = jnp.asarray(_x())
  assert light.jitter_inputs(x, {"image": x}, norm) is x
  batch = {"light_mu": jnp.array([0.5, -1.0, 0.0]), "light_sigma": jnp.array([2.0, 1.0, 0.5])}
  expected = light.brightness(light.contrast(x, batch["light_sigma"]), batch["light_mu"])
  np.testing.assert_allclose(light.jitter_inputs(x, batch, norm), expected, rtol=1e-5, atol=1e-6)


def test_light_jitter_draws_in_its_ranges_and_reads_the_config():
  jitter = light.LightJitter((-2.0, 2.0), (0.1, 4.0))
  rng = np.random.default_rng(0)
  draws = [jitter.random_map({"label": 0}, rng) for _ in range(200)]
  mus = np.array([d["light_mu"] for d in draws])
  sigmas = np.array([d["light_sigma"] for d in draws])
  assert mus.dtype == np.float32 and -2 <= mus.min() < -1.5 and 1.5 < mus.max() <= 2
  assert sigmas.min() >= 0.1 and sigmas.max() <= 4.0
  cfg = base("lenet5").data
  assert datasets.training_transforms(cfg) == []
  cfg.light_augment = True
  assert datasets.training_transforms(cfg) == [light.LightJitter((-2.0, 2.0), (0.1, 4.0))]
  cfg.light_sigma = (-0.1, 4.0)  # the authors' range: a zero divisor inside
  with pytest.raises(UserError, match=r"config.data.light_sigma: \(-0.1, 4.0\) must be positive"):
    datasets.training_transforms(cfg)
  cfg.light_sigma, cfg.light_mu = (0.1, 4.0), (2.0, -2.0)
  with pytest.raises(UserError, match="config.data.light_mu: .* low <= high"):
    datasets.training_transforms(cfg)


def test_augmented_batches_carry_seeded_draws_that_the_train_step_uses():
  images = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 1), np.uint8)
  source = ArraySource(images, np.arange(8) % 3)
  jitter = [light.LightJitter()]
  batches = [
    next(iter(pipeline.train_dataset(source, batch_size=4, seed=3, augment="none", transforms=t)))
    for t in (jitter, jitter, [])
  ]
  assert batches[0]["light_mu"].shape == (4,)
  np.testing.assert_array_equal(batches[0]["light_mu"], batches[1]["light_mu"])  # seeded
  assert "light_mu" not in batches[2]
  model = get_model("lenet5", num_classes=3, dropout=0.0)
  optimizer = nnx.Optimizer(model, optax.sgd(0.0), wrt=nnx.Param)
  graphdef, state = nnx.split((model, optimizer))
  step = make_train_step(graphdef, Normalization(0.0, 1.0, "unit"))
  plain = {k: batches[0][k] for k in ("image", "label")}
  loss = lambda b: float(step(jax.tree.map(jnp.copy, state), b)[1]["loss"])
  assert abs(loss(batches[0]) - loss(plain)) > 1e-3  # the draws change the inputs
