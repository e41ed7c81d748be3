"""The model contract, checked over every tiny build of every entry of MODELS (`spec.tests()`:
its test input shape and kwargs, plus `more_tests`, e.g. the same family in 3D).

A new registered model gets these tests for free: stage declarations and shapes, forward with
start/stop composing to the full model, receptive fields against gradient support, feature
maps, split_at, the eval view, every method of the explain table, and look_inside's figures.
A model composed with the precortical front-end (`models.precortical`) is a case too, for each
variant its spec lists in `test_frontends` (named '<model>+<variant>'), in all but the
explain table's test.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from bugnist_jax import inspection
from bugnist_jax.attribution import METHODS, Explainer, Options
from bugnist_jax.data.sources import IndexedSource
from bugnist_jax.data.transforms import Normalization
from bugnist_jax.errors import UserError
from bugnist_jax.models import (
  MODELS,
  ContractError,
  Stage,
  StagedModel,
  add_saliency_branch,
  check_model,
  get_model,
)
from bugnist_jax.models.adapters import Bound, as_function, split_at
from bugnist_jax.models.layers import DenseBlock, Logits

NAMES = sorted(MODELS)
# Every tiny build of every model is checked; in CI (`make test`) the first build of the
# models whose stage kinds differ (3D conv, 2D conv, tanh/avg-pool; `check_model` runs on
# every build in CI), the rest (VGG, other families, ranks, variants, front-ends: tens of CPU
# seconds each, mostly eager dispatch in the receptive-field checks) in the slow tier,
# `make test-all`.
CORE_BUILDS = ("bugcnn3d", "cnn2d", "lenet5")
BUILDS = [
  pytest.param(
    (name, build),
    id=f"{name}-{build.label()}",
    marks=() if name in CORE_BUILDS and i == 0 else pytest.mark.slow,
  )
  for name in NAMES
  for i, build in enumerate(MODELS[name].tests())
]


def _tiny(build, name, num_classes=3, seed=0, **overrides):
  return get_model(
    name,
    input_shape=build.input_shape,
    in_channels=build.in_channels,
    num_classes=num_classes,
    rngs=nnx.Rngs(seed),
    **(dict(build.kwargs) | overrides),
  )


def _input(build, batch=2, seed=0):
  shape = (batch, *build.input_shape, build.in_channels)
  return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


@pytest.fixture(scope="module", params=BUILDS)
def tiny(request):
  name, build = request.param
  return name, _tiny(build, name), build, _input(build)


@pytest.mark.parametrize(
  "name,build",
  [(n, b) for n in NAMES for b in MODELS[n].tests()],
  ids=[f"{n}-{b.label()}" for n in NAMES for b in MODELS[n].tests()],
)
def test_every_build_declares_its_stages_right_on_abstract_shapes(name, build):
  """In CI for every build (the tier above is slow): `check_model` on an abstract build."""
  model = nnx.eval_shape(lambda: _tiny(build, name))
  shapes = check_model(model)
  assert list(shapes)[: len(model.layer_names)] == list(model.layer_names)
  assert shapes[model.layer_names[-1]] == ("flat", (2, 3)), name


def test_every_stage_keeps_the_contract(tiny):
  name, model, spec, x = tiny
  shapes = check_model(model)
  assert list(shapes)[: len(model.layer_names)] == list(model.layer_names)
  assert shapes[model.layer_names[-1]] == ("flat", (2, 3)), name
  graphdef, state = nnx.split(model)  # jitted: eager dispatch compiles each op (tens of s)
  _, outputs = jax.jit(lambda s, v: nnx.merge(graphdef, s).forward(v))(state, x)
  for stage, (kind, shape) in shapes.items():
    assert outputs[stage].shape == shape, stage
    assert kind == model.stage(stage).kind


def test_forward_with_start_and_stop_composes_to_the_full_model(tiny):
  _, model, _, x = tiny
  f = as_function(model)
  full = f(x)
  for stop in model.layer_names[:-1]:  # eager: a compile per stop and side would cost more
    features, head = split_at(model, stop)
    np.testing.assert_allclose(head(features(x)), full, rtol=2e-4, atol=2e-5, err_msg=stop)


def test_cam_layer_and_spatial_layers(tiny):
  _, model, _, x = tiny
  spatial = model.spatial_layers()
  assert spatial and model.cam_layer() in spatial
  fields = inspection.receptive_fields(model, x.shape[1:-1])
  assert model.cam_layer() in fields  # a CAM layer has a known receptive field
  maps = inspection.feature_maps(model, x[:1])
  assert list(maps) == spatial
  assert all(maps[n].shape[1:-1] == fields[n].shape for n in fields)


def test_receptive_fields_bound_the_gradient_support(tiny):
  name, model, spec, x = tiny
  fields = inspection.receptive_fields(model, spec.input_shape)
  chosen = list(fields)[:: max(1, len(fields) // 3)]
  for stage in chosen:
    field = fields[stage]
    features = split_at(model, stage)[0]
    index = tuple(s // 2 for s in field.shape)
    grad = jax.jit(jax.grad(lambda v, f=features, i=index: f(v)[(0, *i)].sum()))(x)
    support = np.abs(np.asarray(grad[0])).sum(-1) > 0
    inside = np.zeros(support.shape, bool)
    inside[field.box(index, spec.input_shape)] = True
    assert support.any(), f"{name}.{stage}: no gradient reaches the input"
    assert not (support & ~inside).any(), f"{name}.{stage}: gradient outside the receptive field"


def test_eval_view_is_deterministic_and_per_sample(tiny):
  _, model, _, x = tiny
  f = jax.jit(as_function(model))
  np.testing.assert_allclose(f(x), f(x), rtol=0, atol=0)
  np.testing.assert_allclose(f(x)[:1], f(x[:1]), rtol=2e-4, atol=2e-5)  # no batch coupling


# The method table on the 3D model and the tanh model in every run of the suite; the 2D ReLU
# model (cnn2d) runs every method of the table through explain in tests/test_explain_methods.py
# (a trained Caltech CNN); the other families and cnn2d here in the slow tier (`make test-all`):
# a method sees the model as functions (`Bound`), and each model costs a compile per method
# (about 30 CPU s per model).
TABLE_MODELS = ("bugcnn3d", "lenet5")
TABLE_CASES = [
  pytest.param(method, name, marks=() if name in TABLE_MODELS else pytest.mark.slow)
  for name in NAMES
  for method in METHODS
]


@pytest.mark.parametrize(("method", "name"), TABLE_CASES)
def test_every_method_of_the_explain_table(method, name):
  # One build per model: a method sees stages, not their insides (more_tests vary those).
  build = MODELS[name].tests()[0]
  # XLA's convolution: the same function as the CPU fast path (tests/test_conv_impls.py),
  # several times quicker to compile at these tiny sizes.
  model = _tiny(build, name, conv_impl="xla")
  if METHODS[method].needs:  # `learned`: the model's own saliency branch
    add_saliency_branch(model, conv_impl="xla", rngs=nnx.Rngs(1))
  x = _input(build)
  explainer = Explainer(Bound.from_model(model))
  opts = Options(num_samples=2, steps=2, batch_size=2, window=4, stride=4)
  try:
    maps = explainer(method, x, jnp.array([0, 1]), opts)
  except UserError as e:  # guided backprop has no ReLU to guide in LeNet's tanh: it says so
    assert method.startswith("guided_") and "found no ReLU" in str(e), (name, e)
    assert name == "lenet5", (name, e)
    return
  expected = x.shape[:-1] if METHODS[method].cam else x.shape
  assert maps.shape == expected, (name, build, method)
  assert np.isfinite(maps).all(), (name, build, method)


class _Images(IndexedSource):
  def __init__(self, spec, n=4):
    rng = np.random.default_rng(0)
    self.images = rng.integers(0, 256, (n, *spec.input_shape, spec.in_channels), np.uint8)
    self.num_examples = n

  def record(self, i):
    return {"image": self.images[i], "label": np.int32(i % 3)}

  def labels(self):
    return np.arange(self.num_examples, dtype=np.int32) % 3


def test_look_inside_figures(tiny, tmp_path):
  _, model, spec, x = tiny
  paths = inspection.save_feature_maps(model, x[:1], tmp_path)
  assert len(paths) == len(model.spatial_layers()) and all(p.stat().st_size > 500 for p in paths)
  shown = inspection.stage_filters(model)
  filters = inspection.save_filters(model, tmp_path / "filters")
  assert len(filters) == len(shown) and all(p.stat().st_size > 500 for p in filters)
  assert all(k.ndim == len(spec.input_shape) + 2 for k in shown.values())
  source, norm = _Images(spec), Normalization(0.5, 0.25)
  patches, captions, idx = inspection.top_patches(
    model, source, norm, model.cam_layer(), 0, k=2, batch_size=2
  )
  assert len(patches) == len(captions) == 2 and len(set(idx.tolist())) == 2
  assert all(p.ndim == 3 for p in patches)  # 3D: a maximum projection
  assert all(p.shape[-1] == spec.in_channels for p in patches)


class _Plain(nnx.Module):  # a stage that is not a contract.Stage
  def __call__(self, x):
    return x


class _WrongGeometry(Stage):
  kind = "spatial"

  def __call__(self, x):
    return x[:, ::2, ::2]

  def rf_ops(self, ndim):
    return []  # claims to keep the size, halves it


class _Broken(StagedModel):
  def __init__(self, first):
    self.input_shape, self.in_channels = (8, 8), 1
    self.first = first
    self.flat = DenseBlock(16 if isinstance(first, _WrongGeometry) else 64, 4, rngs=nnx.Rngs(0))
    self.logits = Logits(4, 2, rngs=nnx.Rngs(0))
    self.layer_names = ("first", "flat", "logits")


@pytest.mark.parametrize(
  "stage,message",
  [(_Plain(), "not a models.contract.Stage"), (_WrongGeometry(), "rf_ops give spatial shape")],
)
def test_a_stage_that_breaks_the_contract_is_named(stage, message):
  with pytest.raises(ContractError, match=f"stage 'first'.*{message}"):
    check_model(_Broken(stage))
