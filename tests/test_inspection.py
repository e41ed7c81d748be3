"""Looking inside: receptive fields against brute-force gradients, feature maps, top patches."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from bugnist_jax import inspection
from bugnist_jax.data.synthetic2d import Synthetic2DSource
from bugnist_jax.data.transforms import Normalization
from bugnist_jax.models import get_model
from bugnist_jax.models.cnn2d import MaxPool


class _AvgPool(MaxPool):
  """Same windows as MaxPool, averaging: every pixel of a window gets gradient."""

  def __call__(self, x):
    ndim = x.ndim - 2
    return nnx.avg_pool(x, (self.window,) * ndim, (self.stride,) * ndim, self.padding)


def _positive(model):
  """Positive weights and biases: with positive inputs every ReLU is active."""
  state = nnx.state(model, nnx.Param)
  nnx.update(model, jax.tree.map(lambda v: jnp.abs(v) + 0.01, state))
  return model


@pytest.mark.parametrize("shape", [(64, 64), (58, 83)])
def test_receptive_fields_match_gradient_support(shape):
  model = _positive(get_model("cnn2d", arch=3, input_shape=shape, rngs=nnx.Rngs(0)))
  fields = inspection.receptive_fields(model, shape)
  for name in model.layer_names:
    if name.startswith("pool"):
      old = getattr(model, name)
      setattr(model, name, _AvgPool(old.window, old.stride, old.padding))
  assert set(fields) == {"conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "pool4"}
  assert fields["conv1"].size == (11, 11) and fields["conv1"].jump == (4, 4)
  x = jax.random.uniform(jax.random.key(0), (1, *shape, 3), minval=0.5, maxval=1.0)
  rng = np.random.default_rng(0)
  graphdef, state = nnx.split(model)
  for name in ("conv1", "pool2", "conv4", "pool4"):
    field = fields[name]
    out_shape = model.forward(x, stop=name)[0].shape[1:-1]
    assert tuple(out_shape) == field.shape, name

    @jax.jit
    def grad_at(x, i, j, name=name):
      f = lambda x: nnx.merge(graphdef, state).forward(x, stop=name)[0][0, i, j, 0]
      return jax.grad(f)(x)

    corners = [(0, 0), tuple(s - 1 for s in out_shape)]
    for index in corners + [tuple(rng.integers(0, s) for s in out_shape)]:
      support = np.abs(np.asarray(grad_at(x, *index)[0])).sum(-1) > 0
      expected = np.zeros(shape, bool)
      expected[field.box(index, shape)] = True
      np.testing.assert_array_equal(support, expected, err_msg=f"{name} {index}")


def test_receptive_fields_of_the_3d_model():
  model = nnx.eval_shape(
    lambda: get_model("bugcnn3d", input_shape=(32, 16, 16), channels=(2, 2, 2, 2), rngs=nnx.Rngs(0))
  )
  fields = inspection.receptive_fields(model, (32, 16, 16))
  assert list(fields) == ["block1", "block2", "block3", "block4"]
  # conv3 'SAME' (pad 1) then pool 2, four times: size 4, 10, 22, 46; jump 2, 4, 8, 16.
  assert [f.size[0] for f in fields.values()] == [4, 10, 22, 46]
  assert [f.jump[1] for f in fields.values()] == [2, 4, 8, 16]
  assert fields["block1"].start == (-1, -1, -1) and fields["block4"].shape == (2, 1, 1)


def test_feature_maps_and_figures(tmp_path):
  model = get_model("cnn2d", arch=2, input_shape=(64, 64), rngs=nnx.Rngs(0))
  x = jax.random.normal(jax.random.key(1), (1, 64, 64, 3))
  maps = inspection.feature_maps(model, x)
  assert {k: v.shape for k, v in maps.items()} == {
    "conv1": (1, 16, 16, 8),
    "pool1": (1, 7, 7, 8),
    "conv2": (1, 7, 7, 16),
    "pool2": (1, 3, 3, 16),
    "conv3": (1, 3, 3, 32),
    "pool3": (1, 1, 1, 32),
  }
  paths = inspection.save_feature_maps(model, x, tmp_path)
  assert [p.name for p in paths] == [f"features_{name}.png" for name in maps]
  assert all(p.stat().st_size > 1000 for p in paths)
  model3d = get_model(
    "bugcnn3d", input_shape=(32, 16, 16), channels=(2, 2, 2, 2), dense=4, rngs=nnx.Rngs(0)
  )
  paths = inspection.save_feature_maps(model3d, jnp.ones((1, 32, 16, 16, 1)), tmp_path / "3d")
  assert len(paths) == 4 and all(p.exists() for p in paths)


def test_top_patches_are_the_strongest_items():
  src = Synthetic2DSource(13, (48, 48), seed=0)
  model = get_model("cnn2d", arch=1, input_shape=(48, 48), rngs=nnx.Rngs(0))
  norm = Normalization(0.5, 0.25)
  scan = inspection.scan_source(model, src, norm, "conv2", 3, batch_size=5)
  images = np.stack([src[i]["image"] for i in range(13)])
  acts = np.asarray(model.forward(norm(images), stop="conv2")[0])
  np.testing.assert_allclose(scan.values, acts[..., 3].max(axis=(1, 2)), rtol=1e-5, atol=1e-5)
  for i in range(13):
    assert acts[(i, *scan.positions[i], 3)] == pytest.approx(scan.values[i], abs=1e-5)
  top = scan.top(4)
  assert np.all(np.diff(scan.values[top]) <= 0) and scan.values[top[0]] == scan.values.max()
  patches, captions, idx = inspection.top_patches(
    model, src, norm, "logits", 2, k=3, among=np.array([2, 7, 12])
  )
  assert sorted(idx.tolist()) == [2, 7, 12] and len(captions) == 3
  field = inspection.receptive_fields(model, (48, 48))["conv2"]
  assert all(p.ndim == 3 and p.shape[0] <= field.size[0] for p in patches)
  with pytest.raises(ValueError, match="unknown layer"):
    inspection.scan_source(model, src, norm, "conv9", 0)


def test_crop_of_a_volume_is_a_projection():
  vol = np.zeros((8, 6, 6, 1), np.uint8)
  vol[5, 2, 3] = 200
  patch = inspection.crop(vol, (slice(2, 7), slice(1, 5), slice(1, 5)))
  assert patch.shape == (4, 4, 1) and patch[1, 2, 0] == 200
