"""ResNet and DenseNet (models/resnet.py, densenet.py): parameter counts against torchvision's,
loaded torchvision weights computing torch's function (2D, 3D on the planes path, R(2+1)D-18,
DenseNet with old key names), inflation, bad fields, the configs and a tiny training run.

The contract (stages, receptive fields, every explain method, look_inside) is
tests/test_model_contract.py's, over the tiny builds in `models.MODELS`.
"""

import importlib
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from bugnist_jax.errors import UserError
from bugnist_jax.models import MODELS, build_model, check_model, densenet, get_model, resnet
from bugnist_jax.models import torch_weights as tw
from bugnist_jax.models.densenet import current_key

FAMILIES = {"resnet": resnet, "densenet": densenet}
VARIANTS = {name: module.VARIANTS for name, module in FAMILIES.items()}

# torchvision's (and the COVID-Nets notes', /work/shared/notes/seeds-001-002-004.md) counts.
COUNTS = [
  ("resnet", "resnet18", (224, 224), 1000, 11_689_512),
  ("resnet", "resnet34", (224, 224), 1000, 21_797_672),
  ("resnet", "resnet50", (224, 224), 1000, 25_557_032),
  ("resnet", "covid", (150, 175), 2, 4_980_802),
  ("resnet", "covid", (150, 175), 101, 5_031_589),
  ("resnet", "r2plus1d_18", (16, 112, 112), 400, 31_505_325),
  ("densenet", "densenet121", (224, 224), 1000, 7_978_856),
  ("densenet", "covid", (150, 175), 2, 1_633_538),
]


def _count(name, **kwargs) -> int:
  """Parameters (nnx.Param, not the batch statistics) of a model built abstractly."""
  model = nnx.eval_shape(lambda: get_model(name, rngs=nnx.Rngs(0), **kwargs))
  return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(nnx.state(model, nnx.Param)))


@pytest.mark.parametrize("name,variant,shape,classes,expected", COUNTS)
def test_parameter_counts_are_torchvisions(name, variant, shape, classes, expected):
  assert _count(name, variant=variant, input_shape=shape, num_classes=classes) == expected


def test_3d_parameter_counts_match_the_torch_port():
  torch_nets = pytest.importorskip("torch_nets")  # tests/torch_nets.py, needs torch
  import torch

  shape, kw = (64, 32, 32), dict(in_channels=1, num_classes=12)
  with torch.device("meta"):  # no memory: only the parameter shapes
    nets = {
      ("resnet", "resnet18"): torch_nets.ResNet("resnet18", ndim=3, **kw),
    }
  for (name, variant), net in nets.items():
    assert _count(name, variant=variant, input_shape=shape, **kw) == torch_nets.count(net), name
  # R(2+1)D with the paper's M per conv keeps the full network's count: M rounds down, and the
  # BatchNorm between the two factors adds 2 M.
  full = torch_nets.count(nets["resnet", "resnet18"])
  factorised = _count("resnet", variant="resnet18", conv="r2plus1d", input_shape=shape, **kw)
  assert abs(factorised - full) < 0.002 * full


def _parity(torch, net, name, x, tmp_path, legacy=False, construct=False, **kwargs):
  """Saves `net`'s state_dict, loads it into our `name` model and compares the logits."""
  state = net.state_dict()
  if legacy:  # torchvision's own densenet files: `denselayer1.norm.1.weight`
    state = {
      k.replace(".norm1.", ".norm.1.").replace(".conv2.", ".conv.2."): v for k, v in state.items()
    }
    assert current_key("f.denselayer3.norm.1.num_batches_tracked") == (
      "f.denselayer3.norm1.num_batches_tracked"
    )
  path = tmp_path / f"{name}.pth"
  torch.save(state, path)
  with torch.no_grad():
    expected = net(torch.from_numpy(x)).numpy()
  ndim, classes = x.ndim - 2, expected.shape[1]
  kw = dict(input_shape=x.shape[2:], in_channels=x.shape[1], num_classes=classes, **kwargs)
  if construct:  # the config's path: weights= in the constructor, after an eager init
    model = get_model(name, weights=str(path), replace_head=False, rngs=nnx.Rngs(1), **kw)
  else:  # built abstractly, the file loaded into zeros: no init to compile (CI time)
    graphdef, abstract = nnx.split(nnx.eval_shape(lambda: get_model(name, **kw)))
    model = nnx.merge(graphdef, jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), abstract))
    rename = current_key if name == "densenet" else None
    keys = FAMILIES[name].torch_keys(model)  # every parameter: none stays zero
    assert tw.load(model, path, keys, name, rename=rename)
  view = nnx.view(model, use_running_average=True, raise_if_not_found=False)
  ours = nnx.jit(lambda m, v: m(v))(view, jnp.asarray(np.moveaxis(x, 1, -1)))
  np.testing.assert_allclose(ours, expected, rtol=2e-4, atol=2e-4, err_msg=f"{name} {ndim}D")


def test_torchvision_weights_compute_torchs_function(tmp_path):
  torch = pytest.importorskip("torch")
  torch_nets = pytest.importorskip("torch_nets")
  rng = np.random.default_rng(0)
  w = 1 / 16

  def x(*shape):
    return rng.normal(size=shape).astype(np.float32)

  # 2D CovidResNet: basic blocks, identity and 1x1 shortcuts.
  net = torch_nets.randomize_norms(torch_nets.ResNet("covid", 2, 3, 5, width=w))
  _parity(torch, net, "resnet", x(2, 3, 32, 32), tmp_path, construct=True, variant="covid", width=w)
  # 3D bottlenecks on the planes path (stride-2 7x7x7 stem and shortcuts, 1x1x1 as matmuls).
  net = torch_nets.randomize_norms(torch_nets.ResNet("resnet50", 3, 1, 4, w, (1, 1, 1, 1)))
  kw = dict(variant="resnet50", width=w, blocks=(1, 1, 1, 1), conv_impl="planes")
  _parity(torch, net, "resnet", x(2, 1, 16, 16, 16), tmp_path, **kw)
  # torchvision's r2plus1d_18 layout: video stem, one M per block, D strided too.
  net = torch_nets.randomize_norms(torch_nets.R2Plus1D18(1, 3, w, (1, 1, 1, 1)))
  kw = dict(variant="r2plus1d_18", width=w, blocks=(1, 1, 1, 1), conv_impl="xla")
  _parity(torch, net, "resnet", x(2, 1, 8, 16, 16), tmp_path, **kw)
  # CovidDenseNet, saved with torchvision's old dense-layer key names.
  net = torch_nets.randomize_norms(torch_nets.DenseNet("covid", 2, 3, 4, 1 / 8, (2, 1, 1, 1)))
  kw = dict(variant="covid", width=1 / 8, blocks=(2, 1, 1, 1))
  _parity(torch, net, "densenet", x(2, 3, 32, 32), tmp_path, legacy=True, **kw)


def test_inflation_repeats_2d_kernels_along_d():
  """A 2D RGB kernel into a 3D one-channel conv: repeated kd times / kd, summed over RGB."""
  value = np.random.default_rng(0).normal(size=(4, 3, 3, 3)).astype(np.float32)  # [O, I, h, w]
  param = nnx.Param(jnp.zeros((5, 3, 3, 1, 4)))  # ours: [kd, h, w, I, O]
  keys = {"conv.weight": (param, "conv")}
  with pytest.raises(UserError, match=r"conv\.weight.*inflate=True"):
    tw.load_state_dict({"conv.weight": value}, keys, source="f.pth", what="a net")
  tw.load_state_dict({"conv.weight": value}, keys, source="f.pth", what="a net", inflate=True)
  per_plane = np.moveaxis(value.sum(1), 0, -1) / 5  # [h, w, O]
  for d in range(5):
    np.testing.assert_allclose(param[...][d, :, :, 0], per_plane, rtol=1e-6)


@pytest.mark.parametrize(
  "name,field,value,message",
  [
    ("resnet", "variant", "resnet19", "variant: unknown 'resnet19'"),
    ("resnet", "blocks", (2, 2), "blocks: four stages"),
    ("resnet", "conv", "depthwise", "conv: unknown 'depthwise'"),
    ("resnet", "width", 0.0, "width: must be > 0"),
    ("densenet", "variant", "densenet169", "variant: unknown 'densenet169'"),
  ],
)
def test_bad_model_fields_are_one_line(name, field, value, message):
  config = _config("covidnets.py", f"{name},smoke")
  config.model[field] = value
  with pytest.raises(UserError, match=f"^config.model: {message}"):
    build_model(config, (32, 32, 3), 5)


def test_inputs_the_network_cannot_take():
  with pytest.raises(ValueError, match="input_shape: r2plus1d_18 takes 3D"):
    get_model("resnet", variant="r2plus1d_18", input_shape=(32, 32))
  with pytest.raises(ValueError, match="too small: DenseNet halves every axis 5 times"):
    get_model("densenet", input_shape=(64, 24, 24))
  with pytest.raises(ValueError, match="conv: 'r2plus1d' factorises 3D"):
    get_model("resnet", conv="r2plus1d", input_shape=(32, 32), width=1 / 16)


def _module(name: str):
  """configs/<name> (configs/ is on sys.path: conftest.py), as the other config tests import it."""
  return importlib.import_module(name.removesuffix(".py"))


def _config(name: str, arg: str):
  return _module(name).get_config(arg)


def test_config_variants_name_valid_models():
  """Every variant of both configs sets fields of its model only; one smoke variant (a 3D
  DenseNet, the pickiest about input sizes) is built abstractly (nothing is computed)."""
  for file in ("covidnets.py", "bugnist3d_nets.py"):
    for net in _module(file).NETS:
      for arg in (net, f"{net},smoke"):
        c = _config(file, arg)
        fields = set(c.model) - {"name"}
        assert fields <= set(MODELS[c.model.name].defaults()), (file, arg)
        assert c.model.variant in VARIANTS[c.model.name], (file, arg)
  c = _config("bugnist3d_nets.py", "densenet121,smoke")
  model = nnx.eval_shape(lambda: build_model(c, (*c.data.shape, 1), 5))
  assert check_model(model)[model.layer_names[-1]] == ("flat", (2, 5))
  with pytest.raises(ValueError, match="exclude each other"):
    _config("bugnist3d_nets.py", "resnet18,densenet121")


def test_covid_resnet_trains(tmp_path):
  """configs/covidnets.py:smoke end to end: finite losses, validation metrics, and the run
  reopens from its checkpoint as the same network."""
  from bugnist_jax.runs import Run
  from bugnist_jax.training.loop import train_and_evaluate

  config = _config("covidnets.py", "smoke")
  config.data.num_examples = 40
  train_and_evaluate(config, tmp_path)
  records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  losses = [r["loss"] for r in records if r["split"] == "train"]
  assert len(losses) >= 2 and np.isfinite(losses).all()
  assert any(r["split"] == "validation" for r in records)
  run = Run.open(tmp_path)
  assert type(run.model).__name__ == "ResNet" and run.model.variant == "covid"
  assert run.model.layer_names[2:6] == ("layer1_0", "layer2_0", "layer3_0", "layer4_0")
