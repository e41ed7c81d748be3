"""PGD adversarial training: the attack's constraints, its effect, the config and the step."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from bugnist_jax.config_defaults import base, with_overrides
from bugnist_jax.data.transforms import Normalization
from bugnist_jax.errors import UserError
from bugnist_jax.models import get_model
from bugnist_jax.models.adapters import as_function
from bugnist_jax.training import adversarial
from bugnist_jax.training.steps import make_train_step


@pytest.fixture(scope="module")
def setup():
  model = get_model("lenet5", num_classes=3, rngs=nnx.Rngs(0))
  x = jnp.asarray(np.random.default_rng(0).random((4, 32, 32, 1)), jnp.float32)
  return model, as_function(model), x, jnp.array([0, 1, 2, 0])


def _ce(f, x, labels):
  return float(jnp.mean(optax.softmax_cross_entropy_with_integer_labels(f(x), labels)))


@pytest.mark.parametrize("norm,epsilon", [("linf", 0.05), ("l2", 1.0)])
def test_pgd_stays_in_the_ball_and_the_intensity_range_and_raises_the_loss(setup, norm, epsilon):
  _, f, x, labels = setup
  kwargs = dict(norm=norm, epsilon=epsilon, steps=5, step_size=2.5 * epsilon / 5)
  # One compile for both calls (the fori_loop would otherwise be traced and compiled twice).
  attack = jax.jit(lambda key: adversarial.pgd(f, x, labels, key=key, **kwargs))
  x_adv = attack(jax.random.key(0))
  delta = np.asarray(x_adv - x).reshape(4, -1)
  size = np.abs(delta).max(1) if norm == "linf" else np.sqrt((delta**2).sum(1))
  assert (size <= epsilon * (1 + 1e-5)).all() and (size > 0.5 * epsilon).all()
  assert float(x_adv.min()) >= 0 and float(x_adv.max()) <= 1
  assert _ce(f, x_adv, labels) > _ce(f, x, labels) + 1e-3
  np.testing.assert_array_equal(attack(jax.random.key(0)), x_adv)  # seeded
  assert not np.array_equal(attack(jax.random.key(1)), x_adv)  # the start is random


def test_projection_onto_the_balls():
  delta = jnp.array([[3.0, -4.0]])
  np.testing.assert_allclose(adversarial.project(delta, "l2", 1.0), [[0.6, -0.8]], rtol=1e-6)
  np.testing.assert_allclose(adversarial.project(delta, "linf", 1.0), [[1.0, -1.0]])
  np.testing.assert_allclose(adversarial.project(delta, "l2", 10.0), delta)


def test_config_gives_the_hook_or_names_the_bad_field():
  cfg = base("lenet5").train
  assert adversarial.from_config(cfg) is None  # off by default
  on = with_overrides(
    base("lenet5"), **{"train.adversarial.norm": "l2", "train.adversarial.epsilon": 0.5}
  )
  hook = adversarial.from_config(on.train, seed=3)
  assert hook == adversarial.Adversarial("l2", 0.5, 7, 2.5 * 0.5 / 7, True, 3)
  for field, value, message in [
    ("norm", "l1", "norm: unknown 'l1'"),
    ("epsilon", 0.0, "epsilon: 0.0 must be > 0"),
    ("steps", 0, "steps: 0 must be >= 1"),
  ]:
    bad = with_overrides(on, **{f"train.adversarial.{field}": value})
    with pytest.raises(UserError, match=f"config.train.adversarial.{message}"):
      adversarial.from_config(bad.train)


def test_the_train_step_trains_on_adversarial_examples(setup):
  model, _, x, labels = setup
  norm = Normalization(0.0, 1.0, "unit")
  batch = {"image": np.asarray(np.rint(x * 255), np.uint8), "label": labels}
  losses = {}
  for name, hook in (("clean", None), ("pgd", adversarial.Adversarial("linf", 0.1, 3, 0.05))):
    view = nnx.view(model, deterministic=True)  # the same loss with and without the attack
    optimizer = nnx.Optimizer(view, optax.sgd(0.0), wrt=nnx.Param)
    graphdef, state = nnx.split((view, optimizer))
    step = make_train_step(graphdef, norm, adversarial=hook)
    _, metrics = step(jax.tree.map(jnp.copy, state), batch)
    losses[name] = float(metrics["loss"])
  assert np.isfinite(list(losses.values())).all()
  assert losses["pgd"] > losses["clean"] + 1e-3
