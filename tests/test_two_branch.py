"""The learned saliency branch: shapes in 2D and 3D through the config, the trunk unchanged, the
box-to-mask conversion, per-item masking of unannotated items, and that the mask loss moves
the learned map onto the object (pointing game against an untrained branch)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from bugnist_jax import saliency
from bugnist_jax.attribution import METHODS, Explainer, Options, methods_for
from bugnist_jax.config_defaults import base, with_overrides
from bugnist_jax.data.sources import IndexedSource, PartlyAnnotated
from bugnist_jax.data.transforms import Normalization
from bugnist_jax.errors import UserError
from bugnist_jax.models import build_model
from bugnist_jax.models.adapters import Bound, split_at
from bugnist_jax.models.saliency_branch import BRANCH, saliency_map
from bugnist_jax.training import saliency_losses as sl
from bugnist_jax.training.steps import make_train_step


def _config(model: str, **overrides):
  small = {"bugcnn3d": {"model.channels": (2, 3, 4, 4), "model.dense": 6}}
  small = small.get(model, {"model.arch": 1, "model.dense": 8})
  return with_overrides(base(model=model), **({"model.conv_impl": "xla"} | small | overrides))


@pytest.mark.parametrize(
  "model,image_shape,decoder",
  # 3D (and VGG) branches: tests/test_model_contract.py runs `learned` on every model.
  [("cnn2d", (32, 32, 3), "unet"), ("cnn2d", (32, 32, 3), "attention")],
)
def test_the_branch_gives_a_map_at_input_size_and_leaves_the_trunk(model, image_shape, decoder):
  plain = build_model(_config(model), image_shape, 3)
  two = build_model(_config(model, **{"saliency_branch.decoder": decoder}), image_shape, 3)
  assert BRANCH in two.branches and BRANCH not in plain.branches
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, *image_shape)), jnp.float32)
  logits, outputs = two.forward(x)
  assert outputs[BRANCH].shape == (2, *image_shape[:-1], 1)
  np.testing.assert_allclose(logits, plain(x), rtol=1e-5, atol=1e-6)  # same trunk, same init
  layer = two.cam_layer()
  features, head = split_at(two, layer)
  np.testing.assert_allclose(head(features(x)), logits, rtol=2e-4, atol=2e-5)
  assert "learned" in methods_for(two) and "learned" not in methods_for(plain)
  maps = Explainer(Bound.from_model(two))("learned", x, jnp.array([0, 1]), Options())
  assert maps.shape == (2, *image_shape[:-1]) and ((maps >= 0) & (maps <= 1)).all()


@pytest.mark.parametrize(
  "field,value,message",
  [
    ("saliency_branch.decoder", "fpn", "config.saliency_branch.decoder: unknown 'fpn'"),
    ("saliency_branch.sources", ("dense1",), "config.saliency_branch.sources: 'dense1'"),
    ("saliency_branch.width", 0, "config.saliency_branch.width"),
  ],
)
def test_bad_branch_fields_are_named(field, value, message):
  config = _config("cnn2d", **{"saliency_branch.decoder": "unet", field: value})
  with pytest.raises(UserError, match=message):
    build_model(config, (32, 32, 3), 3)


def test_learned_on_a_plain_model_is_one_line():
  model = build_model(_config("cnn2d"), (32, 32, 3), 3)
  with pytest.raises(UserError, match="method learned: the model has no saliency branch"):
    Explainer(Bound.from_model(model))(
      "learned", jnp.zeros((1, 32, 32, 3)), jnp.zeros(1, int), Options()
    )


def test_box_to_mask_filled_and_gaussian():
  box = jnp.array([[2, 4, 10, 8]])  # rows 2..9, columns 4..7
  to_mask = jax.jit(sl.box_to_mask, static_argnums=(1, 2))
  target, weight = to_mask(box, (12, 12), "filled")
  t, w = np.asarray(target[0]), np.asarray(weight[0])
  assert t[6, 6] == 1 and w[6, 6] == 1  # the core: surely object
  assert t[2, 4] == 0 and w[2, 4] == 0  # the box's corner: unsure, ignored
  assert t[0, 0] == 0 and w[0, 0] == 1 and t[6, 9] == 0 and w[6, 9] == 1  # outside: background
  assert t.sum() == (t * w).sum() and w[2:10, 4:8].sum() < 32  # no target where ignored
  g, gw = to_mask(box, (12, 12), "gaussian")
  g = np.asarray(g[0])
  assert g.max() == g[5:7, 5:7].max() > 0.8  # peaks at the centre
  assert g[:2].sum() == 0 and g[:, 8:].sum() == 0 and float(gw.min()) == 1
  mask = np.zeros((2, 12, 12), np.uint8)
  mask[0, 2:10, 4:8] = 1
  np.testing.assert_array_equal(sl.box_from_mask(jnp.asarray(mask)), [[2, 4, 10, 8], [0, 0, 0, 0]])
  with pytest.raises(ValueError, match="box_target"):
    sl.box_to_mask(box, (12, 12), "disc")


def _losses(names, **weights):
  cfg = base().train
  cfg.saliency_losses = tuple(names)
  return sl.get_saliency_loss(cfg)


def test_unannotated_items_get_no_saliency_loss():
  rng = np.random.default_rng(0)
  logits = jnp.asarray(rng.normal(size=(2, 8, 8, 1)), jnp.float32)
  mask = (rng.random((2, 8, 8)) > 0.7).astype(np.uint8)
  loss = jax.jit(_losses(["mask", "box"]), static_argnums=(0, 1))
  batch = {"object_mask": jnp.asarray(mask), "annotated": jnp.array([1, 0]), "label": jnp.zeros(2)}
  both = loss(None, None, batch, {BRANCH: logits})
  alone = loss(None, None, {k: v[:1] for k, v in batch.items()}, {BRANCH: logits[:1]})
  other = dict(batch, object_mask=jnp.asarray(mask).at[1].set(1))  # item 1's mask says nothing
  changed = loss(None, None, other, {BRANCH: logits})
  for term in ("mask", "box"):
    assert float(both[term]) > 0
    np.testing.assert_allclose(both[term], alone[term], rtol=1e-6)
    np.testing.assert_allclose(both[term], changed[term], rtol=1e-6)
  none = loss(None, None, dict(batch, annotated=jnp.zeros(2)), {BRANCH: logits})
  assert float(none["mask"]) == 0 and float(none["box"]) == 0


class _Squares(IndexedSource):
  """32x32 RGB noise with one 8x8 square, red for class 0 and green for class 1 (its mask and
  box are the annotation), and an as bright blue distractor square elsewhere, so a map that
  follows brightness alone points at the object half the time."""

  def __init__(self, n, seed):
    self.num_examples, self.seed = n, seed

  def record(self, i):
    rng = np.random.default_rng((self.seed, i))
    image = rng.integers(0, 90, (32, 32, 3)).astype(np.uint8)
    label = i % 2
    y, x = rng.integers(0, 8, 2) + 16 * rng.integers(0, 2, 2)  # one quadrant of four
    dy, dx = (rng.integers(0, 8, 2) + 16 * (1 - np.array([y, x]) // 16)) % 24  # another one
    image[dy : dy + 8, dx : dx + 8, 2] = 230
    image[y : y + 8, x : x + 8, label] = 230
    mask = np.zeros((32, 32), np.uint8)
    mask[y : y + 8, x : x + 8] = 1
    box = np.array([y, x, y + 8, x + 8], np.int32)
    return {"image": image, "label": np.int32(label), "object_mask": mask, "object_box": box}

  def labels(self):
    return np.arange(self.num_examples, dtype=np.int32) % 2


def test_partly_annotated_zeroes_the_annotations_it_drops():
  src = PartlyAnnotated(_Squares(40, 0), 0.5, seed=0)
  flags = np.array([src[i]["annotated"] for i in range(40)])
  assert 0 < flags.sum() < 40
  dropped = src[int(np.argmin(flags))]
  assert dropped["object_mask"].sum() == 0 and dropped["object_box"].sum() == 0
  assert dropped["image"].sum() > 0  # the image is kept: it still trains the classifier
  kept = src[int(np.argmax(flags))]
  assert kept["object_mask"].sum() == 64


def _stack(source, indices):
  records = [source[i] for i in indices]
  return {k: np.stack([r[k] for r in records]) for k in records[0]}


def test_the_mask_loss_moves_the_learned_map_onto_the_object():
  config = _config("cnn2d", **{"model.arch": 1, "saliency_branch.decoder": "unet"})
  model = build_model(config, (32, 32, 3), 2)
  norm = Normalization(0.2, 0.3)
  test = _stack(_Squares(32, 1), range(32))
  x_test = norm(test["image"])

  def pointing(model):
    _, outputs = model.forward(x_test)
    return float(jnp.mean(saliency.pointing_game(saliency_map(outputs), test["object_mask"])))

  before = pointing(model)
  optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
  graphdef, state = nnx.split((model, optimizer))
  step = make_train_step(graphdef, norm, saliency_loss=_losses(["mask"]))
  train = _Squares(16 * 30, 0)
  for k in range(30):
    state, metrics = step(state, _stack(train, range(16 * k, 16 * (k + 1))))
  assert "saliency_mask" in metrics and np.isfinite(float(metrics["saliency_mask"]))
  after = pointing(nnx.merge(graphdef, state)[0])
  assert after > max(before + 0.3, 0.7), (before, after)


def test_saliency_loss_config_errors_name_the_field():
  cfg = base().train
  cfg.saliency_losses = ("mask", "dice")
  with pytest.raises(UserError, match="config.train.saliency_losses: unknown 'dice'"):
    sl.get_saliency_loss(cfg)
  cfg.saliency_losses, cfg.box_target = ("box",), "disc"
  with pytest.raises(UserError, match="config.train.box_target"):
    sl.get_saliency_loss(cfg)
  with pytest.raises(UserError, match="needs object_mask"):
    _losses(["mask"])(None, None, {"label": jnp.zeros(2)}, {BRANCH: jnp.zeros((2, 4, 4, 1))})
  with pytest.raises(UserError, match="config.saliency_branch.decoder"):
    _losses(["mask"])(None, None, {"object_mask": jnp.zeros((2, 4, 4))}, {})
  assert METHODS["learned"].cam and METHODS["learned"].needs == BRANCH


def test_gain_pushes_the_masked_score_through_the_branch():
  config = _config("cnn2d", **{"saliency_branch.decoder": "attention"})
  model = build_model(config, (32, 32, 3), 3)
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 32, 32, 3)), jnp.float32)
  batch = {"label": jnp.array([0, 2])}
  gain = _losses(["gain"])

  def loss(model):
    return gain(model, x, batch, model.forward(x)[1])["gain"]

  value, grads = nnx.jit(nnx.value_and_grad(loss))(model)
  assert 0 < float(value) < 1 + sl.GAIN_AREA  # a probability plus the area term
  assert float(jnp.abs(grads["saliency"]["head"]["kernel"][...]).sum()) > 0
