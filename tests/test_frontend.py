"""The precortical front-end in 2D and 3D: composition, parameter names, theory, filters."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from bugnist_jax import inspection
from bugnist_jax.config_defaults import base, with_overrides
from bugnist_jax.data import light
from bugnist_jax.errors import UserError
from bugnist_jax.models import MODELS, build_model, check_model, get_model
from bugnist_jax.models.adapters import as_function
from bugnist_jax.models.contract import INPUT
from bugnist_jax.models.layers import Logits
from bugnist_jax.models.lenet import TanhConv
from bugnist_jax.models.precortical import CentreSurround, FrontEnded, GainControl
from bugnist_jax.models.staged import StagedModel

TINY_3D = {"input_shape": (16, 16, 16), "channels": (2, 3, 4, 4), "dense": 6, "conv_impl": "xla"}


def _images(shape, seed=0):
  return jnp.asarray(np.random.default_rng(seed).random((2, *shape, 1)), jnp.float32)


def _param_shapes(model) -> dict:
  return jax.tree.map(lambda p: p.shape, nnx.to_pure_dict(nnx.state(model, nnx.Param)))


@pytest.mark.parametrize(
  "name,kwargs,shape",
  [("lenet5", {}, (32, 32)), ("bugcnn3d", TINY_3D, (16, 16, 16))],
)
def test_learned_front_end_keeps_the_wrapped_models_parameter_names(name, kwargs, shape):
  plain = get_model(name, num_classes=3, rngs=nnx.Rngs(0), **kwargs)
  composed = get_model(name, num_classes=3, rngs=nnx.Rngs(0), frontend="precortical", **kwargs)
  assert composed.layer_names == ("bipolar", "ganglion", "lgn", *plain.layer_names)
  shapes = _param_shapes(composed)
  front = {k: shapes.pop(k) for k in ("bipolar", "ganglion", "lgn")}
  assert shapes == _param_shapes(plain)  # C -> C: the wrapped model is unchanged
  kernel = (7,) * len(shape) + (1, 1)
  assert all(f["conv"]["kernel"] == kernel for f in front.values())
  shapes_out = check_model(composed)
  assert shapes_out["lgn"] == ("spatial", (2, *shape, 1))


@pytest.mark.parametrize(
  "name,kwargs,shape,first",
  [("lenet5", {}, (32, 32), "c1"), ("bugcnn3d", TINY_3D, (16, 16, 16), "block1")],
)
def test_fixed_front_end_is_blind_to_brightness_in_2d_and_3d(name, kwargs, shape, first):
  model = get_model(
    name,
    num_classes=3,
    frontend="precortical",
    frontend_variant="fixed",
    frontend_surround_sigma=2.0,
    **kwargs,
  )
  assert model.layer_names[:2] == ("retina", "lgn") and model.in_channels == 1
  assert model.stage(first).conv.kernel.shape[-2] == 2  # ON and OFF channels
  x = _images(shape)
  on_off = model.forward(x, stop="retina")[0]
  assert on_off.shape == (2, *shape, 2)
  assert float(jnp.min(on_off)) >= 0 and float(jnp.max(on_off[..., 0] * on_off[..., 1])) == 0
  f = as_function(model)
  for mu in (-2.0, 0.7):  # the DoG of a constant is zero
    np.testing.assert_allclose(f(light.brightness(x, mu)), f(x), atol=1e-4)


def test_gain_control_divides_out_the_contrast_where_it_is_well_above_c50():
  y = _images((32, 32))
  stage = GainControl(sigma=2.0, semisaturation=1e-4)
  for a in (0.2, 5.0):
    np.testing.assert_allclose(stage(a * y), stage(y), rtol=1e-3, atol=1e-4)
  coarse = GainControl(sigma=2.0, semisaturation=1.0)  # a high c50: the gain stays
  assert float(jnp.max(jnp.abs(coarse(5.0 * y) - coarse(y)))) > 0.5
  assert np.isfinite(stage(jnp.zeros_like(y))).all()  # blank input: no division by zero


def test_filters_of_the_front_ends(tmp_path):
  learned = get_model("lenet5", frontend="precortical")
  shown = inspection.stage_filters(learned)
  assert list(shown) == ["bipolar", "ganglion", "lgn", "c1"]  # c3, c5 expose none
  assert shown["bipolar"].shape == (7, 7, 1, 1) and shown["c1"].shape == (5, 5, 1, 6)
  fixed = get_model("bugcnn3d", frontend="precortical", frontend_variant="fixed", **TINY_3D)
  dog = inspection.stage_filters(fixed)["retina"]
  assert dog.shape == (23, 23, 23, 1, 1)
  assert abs(float(dog.sum())) < 1e-5 and dog[11, 11, 11, 0, 0] > 0 > dog[0, 11, 11, 0, 0]
  paths = inspection.save_filters(learned, tmp_path)
  assert [p.name for p in paths] == [f"filters_{n}.png" for n in shown]
  assert all(p.stat().st_size > 1000 for p in paths)


def test_bad_front_end_fields_are_named():
  with pytest.raises(ValueError, match="frontend: unknown 'retina'"):
    get_model("lenet5", frontend="retina")
  with pytest.raises(ValueError, match="frontend_variant: unknown 'dog'"):
    get_model("lenet5", frontend="precortical", frontend_variant="dog")
  with pytest.raises(ValueError, match="centre < surround"):
    get_model("lenet5", frontend="precortical", frontend_variant="fixed", frontend_center_sigma=4)
  config = with_overrides(base("lenet5"), **{"model.frontend": "precortical", "model.foo": 1})
  with pytest.raises(UserError, match=r"config.model.foo: not a field of model 'lenet5'"):
    build_model(config, (32, 32, 1), 10)
  config = with_overrides(base("lenet5"), **{"model.frontend_variant": "x", "model.frontend": "x"})
  with pytest.raises(UserError, match="config.model: frontend: unknown 'x'"):
    build_model(config, (32, 32, 1), 10)


def test_every_model_config_has_the_front_end_fields():
  for name in MODELS:
    model = base(name).model
    assert model.frontend == "" and model.frontend_variant == "learned", name


class _WithBranch(StagedModel):
  """A model with a branch reading its input (as a saliency head would)."""

  def __init__(self, *, in_channels=1, rngs):
    self.input_shape, self.in_channels = (8, 8), in_channels
    self.conv = TanhConv(in_channels, 2, ndim=2, kernel=3, padding="SAME", rngs=rngs)
    self.logits = Logits(8 * 8 * 2, 3, rngs=rngs)
    self.head = TanhConv(in_channels, 1, ndim=2, kernel=3, padding="SAME", rngs=rngs)
    self.layer_names = ("conv", "logits")
    self.branches = {"head": (INPUT,)}


def test_a_branch_reading_the_input_reads_the_front_ends_output():
  inner = _WithBranch(in_channels=2, rngs=nnx.Rngs(0))
  stages = [("retina", CentreSurround(1.0, 2.0))]  # 1 -> 2 channels, nothing to build
  model = FrontEnded(stages, inner, in_channels=1)
  assert model.branches == {"head": ("retina",)}
  _, outputs = model.forward(_images((8, 8)))
  assert outputs["head"].shape == (2, 8, 8, 1)
  with pytest.raises(ValueError, match="stage 'conv' is also a stage"):
    FrontEnded([("conv", stages[0][1])], _WithBranch(in_channels=2, rngs=nnx.Rngs(0)), 1)
