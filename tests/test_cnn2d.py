"""The Caltech-101 study's architectures: every layer's output shape and parameter count."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from bugnist_jax.models import get_model
from bugnist_jax.models.adapters import split_at

# The study's tables 1-3: (layer, output shape without batch, parameters).
TABLES = {
  1: [
    ("conv1", (56, 56, 8), 2912),
    ("pool1", (27, 27, 8), 0),
    ("conv2", (27, 27, 16), 3216),
    ("pool2", (13, 13, 16), 0),
    ("dense1", (128,), 346240),
    ("logits", (5,), 645),
  ],
  2: [
    ("conv1", (56, 56, 8), 2912),
    ("pool1", (27, 27, 8), 0),
    ("conv2", (27, 27, 16), 3216),
    ("pool2", (13, 13, 16), 0),
    ("conv3", (13, 13, 32), 4640),
    ("pool3", (6, 6, 32), 0),
    ("dense1", (128,), 147584),
    ("logits", (5,), 645),
  ],
  # Table 3 prints the last pool as 13x13x64 but its Flatten (2304 = 6*6*64) and dense1
  # parameters need 6x6x64: see the cnn2d docstring.
  3: [
    ("conv1", (56, 56, 8), 2912),
    ("pool1", (27, 27, 8), 0),
    ("conv2", (27, 27, 16), 3216),
    ("pool2", (13, 13, 16), 0),
    ("conv3", (13, 13, 32), 4640),
    ("conv4", (13, 13, 64), 18496),
    ("pool4", (6, 6, 64), 0),
    ("dense1", (128,), 295040),
    ("logits", (5,), 645),
  ],
}


def _params(module) -> int:
  return sum(int(np.prod(v.shape)) for v in jax.tree.leaves(nnx.state(module, nnx.Param)))


@pytest.mark.parametrize("arch", [1, 2, 3])
def test_layers_match_the_study_tables(arch):
  model = nnx.eval_shape(lambda: get_model("cnn2d", arch=arch, rngs=nnx.Rngs(0)))
  table = TABLES[arch]
  assert model.layer_names == tuple(name for name, _, _ in table)
  x = jax.ShapeDtypeStruct((2, 224, 224, 3), jnp.float32)
  _, outputs = nnx.eval_shape(lambda m, x: m.forward(x), model, x)
  for name, shape, params in table:
    assert outputs[name].shape == (2, *shape), name
    assert _params(getattr(model, name)) == params, name
  assert _params(model) == sum(p for _, _, p in table)


def test_split_and_stages_compose_to_the_logits():
  model = get_model("cnn2d", arch=2, input_shape=(64, 64), rngs=nnx.Rngs(1))
  x = jax.random.normal(jax.random.key(0), (3, 64, 64, 3))
  features, head = split_at(model, "conv3")
  np.testing.assert_allclose(head(features(x)), model(x), rtol=1e-5, atol=1e-5)
  assert features(x).shape == (3, 3, 3, 32)  # 64 -> conv1 16 -> pool1 7 -> pool2 3
  assert model(x).shape == (3, 5)


def test_bad_arguments_raise():
  with pytest.raises(ValueError, match="arch"):
    get_model("cnn2d", arch=4)
  with pytest.raises(ValueError, match="too small"):
    get_model("cnn2d", arch=2, input_shape=(20, 20))
  with pytest.raises(ValueError, match="2D"):
    get_model("cnn2d", input_shape=(32, 32, 32))
