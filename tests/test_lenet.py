"""LeNet-5 (the authors' variant): layout, parameter count, and the theory of its norm layers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from bugnist_jax.models import LeNet5, get_model
from bugnist_jax.models.adapters import as_function


def _digits_like(n=6, seed=0):
  """Images in [0, 1] [n, 32, 32, 1] with a dark border, as the padded digits."""
  x = np.zeros((n, 32, 32, 1), np.float32)
  x[:, 4:28, 6:26] = np.random.default_rng(seed).random((n, 24, 20, 1))
  return jnp.asarray(x)


def test_layout_and_parameter_count():
  model = LeNet5(num_classes=10, rngs=nnx.Rngs(0))
  _, outputs = model.forward(jnp.zeros((2, 32, 32, 1)))
  shapes = {name: outputs[name].shape[1:] for name in model.layer_names}
  assert shapes == {
    "c1": (28, 28, 6),
    "s2": (14, 14, 6),
    "c3": (10, 10, 16),
    "s4": (5, 5, 16),
    "c5": (1, 1, 120),
    "f6": (84,),
    "logits": (10,),
  }
  # 156 + 2416 + 48120 + 10164 + 850, as torch's DFC_LeNet_5.
  assert sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param))) == 61706
  assert model.cam_layer() == "s4"


def test_tanh_bounds_the_hidden_stages():
  model = LeNet5(rngs=nnx.Rngs(0))
  _, outputs = nnx.view(model, deterministic=True).forward(100.0 * _digits_like())
  for name in ("c1", "c3", "c5", "f6"):
    assert float(jnp.max(jnp.abs(outputs[name]))) <= 1.0, name


@pytest.fixture(scope="module")
def nets():
  """IN-LeNet and plain LeNet with the same seed, as functions of their inputs."""
  return [as_function(get_model("lenet5", norm=n, rngs=nnx.Rngs(1))) for n in ("instance", None)]


@pytest.mark.parametrize("scale,shift", [(2.0, 0.3), (0.5, -1.0), (3.0, 0.0), (1.0, 2.0)])
def test_instance_norm_lenet_is_invariant_to_positive_affine_light_changes(nets, scale, shift):
  x = _digits_like()
  f, plain = nets
  # Exact up to the norm's epsilon (1e-5 against the maps' variance).
  np.testing.assert_allclose(f(scale * x + shift), f(x), atol=2e-3)
  assert float(jnp.max(jnp.abs(plain(scale * x + shift) - plain(x)))) > 0.05


def test_instance_norm_is_not_invariant_to_a_negative_scale(nets):
  x = _digits_like()
  f, _ = nets
  assert float(jnp.max(jnp.abs(f(-x) - f(x)))) > 0.05  # a < 0 flips the maps' sign


def test_batch_norm_lenet_has_running_statistics_and_bad_norm_is_named():
  model = get_model("lenet5", norm="batch", rngs=nnx.Rngs(0))
  assert model.c1.norm is not None and model.c5.norm is None
  stats = nnx.state(model, nnx.BatchStat)
  assert set(stats) == {"c1", "c3"}
  with pytest.raises(ValueError, match="norm: unknown 'layer'"):
    get_model("lenet5", norm="layer")
  with pytest.raises(ValueError, match="too small"):
    get_model("lenet5", input_shape=(28, 28))


def test_dropout_is_active_in_training_and_off_in_eval():
  model = LeNet5(dropout=0.5, rngs=nnx.Rngs(0))
  x = _digits_like()
  assert not np.allclose(model(x), model(x))  # fresh dropout masks
  f = as_function(model)
  np.testing.assert_array_equal(f(x), f(x))
