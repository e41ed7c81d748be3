import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from bugnist_jax.models import MODELS, BugCNN3D, get_model
from bugnist_jax.models.adapters import as_function, split_at


def _param_count(model) -> int:
  return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


def test_bugcnn3d_stage_shapes_and_parameters():
  model = BugCNN3D(input_shape=(128, 64, 64), rngs=nnx.Rngs(0))
  x = jax.ShapeDtypeStruct((2, 128, 64, 64, 1), jnp.float32)
  _, out = jax.eval_shape(lambda x: model.forward(x), x)
  assert out["block1"].shape == (2, 64, 32, 32, 16)
  assert out["block4"].shape == (2, 8, 4, 4, 128)
  assert out["dense1"].shape == (2, 256)
  assert out["logits"].shape == (2, 12)
  convs = (27 * 1 + 1) * 16 + (27 * 16 + 1) * 32 + (27 * 32 + 1) * 64 + (27 * 64 + 1) * 128
  dense = (8 * 4 * 4 * 128 + 1) * 256 + (256 + 1) * 12
  assert _param_count(model) == convs + dense


def test_forward_start_stop_composes_to_the_full_model():
  model = BugCNN3D(input_shape=(32, 16, 16), channels=(2, 4, 4, 4), dense=8, rngs=nnx.Rngs(1))
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 32, 16, 16, 1)), jnp.float32)
  a, _ = model.forward(x, stop="block3")
  np.testing.assert_allclose(model.forward(a, start="block3")[0], model(x), rtol=1e-5, atol=1e-6)
  features, head = split_at(model, "block3")
  np.testing.assert_allclose(head(features(x)), as_function(model)(x), rtol=1e-5, atol=1e-6)


def test_registry_errors_list_valid_names():
  with pytest.raises(ValueError, match="valid models: .*bugcnn3d"):
    get_model("bugcnn4d")
  model = get_model("bugcnn3d", input_shape=(32, 16, 16), channels=(2, 2, 2, 2), dense=4)
  with pytest.raises(ValueError, match="valid layers: block1, block2"):
    model.forward(jnp.zeros((1, 32, 16, 16, 1)), stop="conv9")
  assert "bugcnn3d" in MODELS


def test_too_small_input_is_rejected():
  with pytest.raises(ValueError, match="too small"):
    BugCNN3D(input_shape=(8, 8, 8), rngs=nnx.Rngs(0))


def test_bfloat16_compute_keeps_float32_parameters_and_logits():
  model = BugCNN3D(
    input_shape=(32, 16, 16), channels=(2, 4, 4, 4), dense=8, dtype=jnp.bfloat16, rngs=nnx.Rngs(0)
  )
  params = jax.tree.leaves(nnx.state(model, nnx.Param))
  assert all(p.dtype == jnp.float32 for p in params)
  x = jnp.ones((2, 32, 16, 16, 1))
  _, out = model.forward(x)
  assert out["block1"].dtype == jnp.bfloat16
  assert out["logits"].dtype == jnp.float32


def test_eval_view_turns_off_dropout_and_leaves_the_model_in_training_mode():
  model = BugCNN3D(
    input_shape=(32, 16, 16),
    channels=(2, 4, 4, 4),
    dense=8,
    dropout=0.5,
    batch_norm=True,
    rngs=nnx.Rngs(0),
  )
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 32, 16, 16, 1)), jnp.float32)
  f = as_function(model)
  np.testing.assert_array_equal(f(x), f(x))  # deterministic: dropout off, running stats
  assert not model.dense1.dropout.deterministic
  assert not model.block1.norm.use_running_average
