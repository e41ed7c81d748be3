"""Model registry: `MODELS[name]` is a `ModelSpec`; `get_model(name, **kwargs)` builds one.

A spec's config defaults are its constructor's keyword defaults, minus what the data decides
(`DATA_ARGS`), plus the front-end's fields (`precortical.FIELDS`: every model can run behind
the precortical front-end, `frontend='precortical'`), so `config.model` for a 2D model holds
that model's fields and nothing else. `test_kwargs` and `test_input_shape` build a tiny
version for the contract test (`tests/test_model_contract.py`), which every registered model
gets for free; `more_tests` adds other tiny builds (another input rank, another variant) and
`test_frontends` the model behind each front-end variant named, each checked the same way.
"""

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import jax.numpy as jnp
from flax import nnx

from bugnist_jax.errors import UserError
from bugnist_jax.models.cnn2d import CaltechCNN
from bugnist_jax.models.cnn3d import BugCNN3D
from bugnist_jax.models.contract import ContractError, Stage, check_model
from bugnist_jax.models.densenet import DenseNet
from bugnist_jax.models.lenet import LeNet5
from bugnist_jax.models.precortical import FIELDS as FRONTEND_FIELDS
from bugnist_jax.models.precortical import compose
from bugnist_jax.models.resnet import ResNet
from bugnist_jax.models.saliency_branch import add_saliency_branch
from bugnist_jax.models.staged import StagedModel
from bugnist_jax.models.vgg import VGG19

# Constructor arguments set from the data and the run, not from config.model.
DATA_ARGS = ("input_shape", "in_channels", "num_classes", "dtype", "rngs")
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}  # config.train.compute_dtype


@dataclasses.dataclass(frozen=True)
class TinyBuild:
  """One tiny build of a model for the contract test: inputs `[B, *input_shape, in_channels]`,
  constructor `kwargs` (over the spec's `test_kwargs`)."""

  input_shape: tuple[int, ...]
  in_channels: int = 1
  kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)

  def label(self) -> str:
    """'32x32x3' plus the kwargs, for test ids."""
    shape = "x".join(map(str, (*self.input_shape, self.in_channels)))
    return ",".join([shape, *(f"{k}={v}" for k, v in self.kwargs.items())])


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """A registered model: its class, a one-line description and tiny test configurations (the
  first from `test_input_shape`, `test_in_channels`, `test_kwargs`; then `more_tests`)."""

  cls: Callable[..., StagedModel]
  description: str
  test_input_shape: tuple[int, ...]
  test_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  test_in_channels: int = 1
  more_tests: tuple[TinyBuild, ...] = ()
  test_frontends: tuple[str, ...] = ()  # front-end variants the contract test also composes

  def tests(self) -> list[TinyBuild]:
    """Every tiny build, kwargs merged over `test_kwargs`: the first, `more_tests`, then the
    first behind each of `test_frontends`."""
    first = TinyBuild(self.test_input_shape, self.test_in_channels)
    fronts = [
      dataclasses.replace(first, kwargs={"frontend": "precortical", "frontend_variant": v})
      for v in self.test_frontends
    ]
    return [
      dataclasses.replace(t, kwargs={**self.test_kwargs, **t.kwargs})
      for t in (first, *self.more_tests, *fronts)
    ]

  def defaults(self) -> dict[str, Any]:
    """{field: default} of the config fields: the constructor's keyword defaults (data args
    out), then the front-end's."""
    params = inspect.signature(self.cls.__init__).parameters.values()
    own = {
      p.name: p.default
      for p in params
      if p.kind is p.KEYWORD_ONLY
      and p.name not in DATA_ARGS
      and p.default is not inspect.Parameter.empty
    }
    return own | FRONTEND_FIELDS


MODELS: dict[str, ModelSpec] = {
  "bugcnn3d": ModelSpec(
    BugCNN3D,
    "the BugNIST study's 3D CNN: four conv+pool stages, two dense layers",
    test_input_shape=(16, 16, 16),
    test_kwargs={"channels": (2, 3, 4, 4), "dense": 6},
    more_tests=(
      TinyBuild((16, 16, 16), 1, {"conv": "r2plus1d"}),
      # The CPU fast path with its in-convolution pool (the tests' 'auto' is XLA's).
      TinyBuild((16, 16, 16), 1, {"conv_impl": "planes"}),
    ),
  ),
  "cnn2d": ModelSpec(
    CaltechCNN,
    "the Caltech-101 study's architectures 1, 2, 3 (model.arch)",
    test_input_shape=(64, 64),
    test_kwargs={"arch": 3, "dense": 6},
    test_in_channels=3,
  ),
  "lenet5": ModelSpec(
    LeNet5,
    "Fioresi and Petkovic's LeNet-5: tanh, average pools, 32x32 input, norm None/batch/instance",
    test_input_shape=(32, 32),
    test_kwargs={"norm": "batch"},
    # One composed case: composition does not depend on the model; the fixed variant and 3D
    # are covered by tests/test_frontend.py and the light study's smoke run.
    test_frontends=("learned",),
  ),
  "vgg19": ModelSpec(
    VGG19,
    "VGG19 in torchvision's layout (batch_norm=True is vgg19_bn), weights from a file",
    test_input_shape=(32, 32),
    test_kwargs={"width": 1 / 16, "hidden": 8, "batch_norm": True},
    test_in_channels=3,
  ),
  # The families below build with XLA's convolution ('planes' computes the same function:
  # tests/test_resnet.py), several times quicker to compile at tiny sizes. Their 3D builds
  # (the same stage classes) are checked against torch in tests/test_resnet.py instead: the
  # contract test costs tens of seconds per build.
  "resnet": ModelSpec(
    ResNet,
    "ResNets in torchvision's layout, 2D or 3D (model.variant: resnet18/34/50, covid, "
    "r2plus1d_18; model.conv='r2plus1d'), weights from a file",
    test_input_shape=(32, 32),
    test_kwargs={"variant": "covid", "width": 1 / 16, "blocks": (1, 1, 1, 1), "conv_impl": "xla"},
    test_in_channels=3,
  ),
  "densenet": ModelSpec(
    DenseNet,
    "DenseNets in torchvision's layout, 2D or 3D (model.variant: densenet121, covid), "
    "weights from a file",
    test_input_shape=(32, 32),
    test_kwargs={"variant": "covid", "width": 1 / 8, "blocks": (1, 1, 1, 1), "conv_impl": "xla"},
    test_in_channels=3,
  ),
}


def model_spec(name: str) -> ModelSpec:
  """The spec registered as `name`; ValueError listing the valid names otherwise."""
  if name not in MODELS:
    raise ValueError(f"unknown model {name!r}; valid models: {', '.join(sorted(MODELS))}")
  return MODELS[name]


def get_model(name: str, *, rngs: nnx.Rngs | None = None, **kwargs) -> StagedModel:
  """Builds the model registered as `name`; kwargs go to its constructor.

  A keyword the model does not take is a ValueError naming it and listing the valid ones.
  `frontend='precortical'` (and the other `precortical.FIELDS`) puts the precortical
  front-end in front of it.
  """
  spec = model_spec(name)
  valid = set(spec.defaults()) | set(DATA_ARGS)
  unknown = sorted(set(kwargs) - valid)
  if unknown:
    raise ValueError(
      f"{unknown[0]!r} is not a field of model {name!r}; valid: "
      f"{', '.join(sorted(spec.defaults()))}"
    )
  front = {k: kwargs.pop(k) for k in list(kwargs) if k in FRONTEND_FIELDS}
  return compose(spec.cls, front, rngs=rngs or nnx.Rngs(0), **kwargs)


def build_model(config, image_shape, num_classes: int, rngs: nnx.Rngs | None = None) -> StagedModel:
  """The model of `config.model` (name + its fields) for images `[*spatial, C]` of
  `image_shape` and `num_classes` classes, computing in `config.train.compute_dtype`.

  A bad name, field or value is a UserError naming the config field.
  """
  fields = config.model.to_dict()
  name = fields.pop("name")
  dtype = config.train.compute_dtype
  if dtype not in DTYPES:
    raise UserError(f"config.train.compute_dtype: {dtype!r}; valid: {', '.join(DTYPES)}")
  if name not in MODELS:
    raise UserError(f"config.model.name: unknown {name!r}; valid: {', '.join(sorted(MODELS))}")
  unknown = sorted(set(fields) - set(MODELS[name].defaults()))
  if unknown:
    raise UserError(
      f"config.model.{unknown[0]}: not a field of model {name!r}; valid: "
      f"{', '.join(sorted(MODELS[name].defaults()))}"
    )
  rngs = rngs or nnx.Rngs(config.seed)
  try:
    model = get_model(
      name,
      input_shape=tuple(image_shape[:-1]),
      in_channels=image_shape[-1],
      num_classes=num_classes,
      dtype=DTYPES[dtype],
      rngs=rngs,
      **fields,
    )
  except (TypeError, ValueError) as e:
    raise UserError(f"config.model: {e}") from None
  branch = config.get("saliency_branch")  # runs saved before the branch existed lack it
  if branch is None or not branch.decoder:
    return model
  try:
    return add_saliency_branch(
      model,
      decoder=branch.decoder,
      sources=tuple(branch.sources),
      width=branch.width,
      conv_impl=fields.get("conv_impl", "auto"),
      dtype=DTYPES[dtype],
      rngs=rngs,
    )
  except ValueError as e:
    raise UserError(f"config.saliency_branch.{e}") from None


__all__ = [
  "DTYPES",
  "build_model",
  "DATA_ARGS",
  "MODELS",
  "BugCNN3D",
  "CaltechCNN",
  "ContractError",
  "DenseNet",
  "FRONTEND_FIELDS",
  "LeNet5",
  "ModelSpec",
  "ResNet",
  "Stage",
  "StagedModel",
  "TinyBuild",
  "VGG19",
  "add_saliency_branch",
  "check_model",
  "get_model",
  "model_spec",
]
