"""Tests for the right-for-the-right-reasons penalty (Ross et al. 2017) and its masks."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from flax import nnx

from bugnist_jax.data import datasets, pipeline, synthetic3d
from bugnist_jax.data.transforms import Normalization
from bugnist_jax.errors import UserError
from bugnist_jax.training.losses import right_for_the_right_reasons
from bugnist_jax.training.steps import make_train_step


class Linear(nnx.Module):
  """logits = flatten(x) @ w + b: its input gradient has a closed form."""

  def __init__(self, num_inputs: int, num_classes: int, rngs: nnx.Rngs, scale: float = 1.0):
    self.w = nnx.Param(scale * jax.random.normal(rngs.params(), (num_inputs, num_classes)))
    self.b = nnx.Param(jnp.zeros(num_classes))

  def __call__(self, x):
    return x.reshape(x.shape[0], -1) @ self.w[...] + self.b[...]


def _setup(shape=(4, 4, 1), k=3, batch=2, seed=0):
  model = Linear(int(np.prod(shape)), k, nnx.Rngs(seed))
  x = jax.random.normal(jax.random.key(seed + 1), (batch, *shape))
  return model, x


def test_zero_when_the_mask_covers_everything():
  model, x = _setup()
  assert (
    float(right_for_the_right_reasons(model, x, {"object_mask": jnp.ones(x.shape[:-1])})) == 0.0
  )


def test_positive_when_some_input_is_outside_the_mask():
  model, x = _setup()
  mask = jnp.ones(x.shape[:-1]).at[:, 0, 0].set(0)
  assert float(right_for_the_right_reasons(model, x, {"object_mask": mask})) > 0.0


def test_equals_hand_computation_on_a_linear_model():
  model, x = _setup(k=3, batch=2)
  rng = np.random.default_rng(0)
  mask = rng.integers(0, 2, x.shape[:-1]).astype(np.uint8)
  w, xf = np.asarray(model.w[...], np.float64), np.asarray(x, np.float64).reshape(2, -1)
  z = xf @ w
  p = np.exp(z - z.max(1, keepdims=True))
  p /= p.sum(1, keepdims=True)
  # d/dx sum_k log softmax_k(z) = W (1 - K p): each log-probability's gradient, summed.
  grad = (1.0 - 3 * p) @ w.T
  outside = 1 - mask.reshape(2, -1)
  expected = np.mean(np.sum((grad * outside) ** 2, axis=1))
  got = float(right_for_the_right_reasons(model, x, {"object_mask": jnp.asarray(mask)}))
  np.testing.assert_allclose(got, expected, rtol=1e-4)


def test_missing_mask_names_the_config_field():
  model, x = _setup()
  with pytest.raises(UserError, match="mask_from_threshold"):
    right_for_the_right_reasons(model, x, {})


def _outside_share(model, x, mask) -> float:
  """Share of the squared input gradient (of the summed log-probabilities) outside the mask."""
  g = jax.grad(lambda v: jnp.sum(jax.nn.log_softmax(model(v))))(x)[..., 0] ** 2
  return float(jnp.sum(g * (1 - mask)) / jnp.sum(g))


def _train(weight: float, steps: int = 60):
  """A linear model on 8x8 images whose class is written twice: in the 'object' (left half,
  the mask) and, five times stronger, in a 'shortcut' (right half) the model prefers."""
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 2, 64)
  sign = (2.0 * labels - 1)[:, None, None]
  x = rng.normal(0, 1, (64, 8, 8))
  x[:, :, :4] += 0.3 * sign
  x[:, :, 4:] += 1.5 * sign
  mask = np.zeros((64, 8, 8), np.uint8)
  mask[:, :, :4] = 1
  # Batches hold uint8 images: encode x so that Normalization(0.5, 25 / 255) recovers it.
  image = np.clip(np.round(25 * x + 127.5), 0, 255).astype(np.uint8)[..., None]
  model = Linear(64, 2, nnx.Rngs(0), scale=0.01)  # small: learning, not the init, decides
  opt = nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param)
  graphdef, state = nnx.split((model, opt))
  loss = right_for_the_right_reasons if weight > 0 else None
  step = make_train_step(graphdef, Normalization(0.5, 25 / 255), loss, weight)
  batch = {"image": image, "label": labels.astype(np.int32), "object_mask": mask}
  history = []
  for _ in range(steps):
    state, metrics = step(state, batch)
    history.append(float(metrics.get("extra_loss", 0.0)))
  model, _ = nnx.merge(graphdef, state)
  xs = Normalization(0.5, 25 / 255)(image)
  return _outside_share(model, xs, jnp.asarray(mask)[..., None][..., 0]), history, metrics


def test_training_with_the_penalty_moves_gradients_into_the_mask():
  plain, _, plain_metrics = _train(0.0)
  rrr, history, metrics = _train(1.0)
  assert plain > 0.6  # without the penalty the model leans on the shortcut half
  assert rrr < 0.5 * plain, (rrr, plain)
  # From a near-zero init the penalty first grows with the weights, then training drives it down.
  assert history[-1] < 0.25 * max(history), history
  assert float(metrics["accuracy"]) > 0.8 and float(plain_metrics["accuracy"]) > 0.8


def test_mask_from_threshold_is_the_largest_bright_component():
  record = synthetic3d.generate_example(0, 5, (32, 16, 16), 1.0)
  dim = {**record, "image": np.full_like(record["image"], 20)}
  dim["image"][10:14, 5:9, 5:9] = 200  # a bright 4x4x4 block: the largest component
  dim["image"][0, 0, 0] = 200  # a single bright voxel elsewhere
  out = pipeline.MaskFromThreshold(threshold=90).map(dim)
  assert out["object_mask"].dtype == np.uint8 and out["object_mask"].shape == (32, 16, 16)
  assert out["object_mask"].sum() == 64 and out["object_mask"][10:14, 5:9, 5:9].all()
  assert np.array_equal(out["image"], dim["image"])  # the image is untouched
  # After RemovePacking at the same threshold the mask is one comparison, and the same.
  removed = pipeline.RemovePacking(90).map(dim)
  again = pipeline.MaskFromThreshold(90, packing_removed=True).map(removed)
  assert np.array_equal(again["object_mask"], out["object_mask"])
  cfg = ml_collections.ConfigDict(
    {"remove_packing": True, "packing_threshold": 90, "mask_from_threshold": True}
  )
  assert datasets.training_transforms(cfg)[-1] == pipeline.MaskFromThreshold(90, True)
  # An item left unannotated (PartlyAnnotated) gets a zero mask of the same shape and dtype.
  blank = pipeline.MaskFromThreshold(threshold=90).map({**dim, "annotated": np.uint8(0)})
  assert blank["object_mask"].dtype == np.uint8 and blank["object_mask"].shape == (32, 16, 16)
  assert not blank["object_mask"].any()
  # In the training pipeline it replaces the mask before augmentation moves it with the image.
  ds = pipeline.train_dataset(
    [dim] * 4, batch_size=2, seed=0, transforms=[pipeline.MaskFromThreshold(90)]
  )
  batch = next(iter(ds))
  assert batch["object_mask"].sum() == 2 * 64
  assert np.all(batch["image"][..., 0][batch["object_mask"] > 0] == 200)
