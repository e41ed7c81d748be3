"""VGG19: torchvision key layout, weight loading from local files, frozen backbone."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from bugnist_jax import config_defaults
from bugnist_jax.errors import UserError
from bugnist_jax.models import get_model
from bugnist_jax.models.pooling import adaptive_avg_pool
from bugnist_jax.models.vgg import GROUPS, torch_key_map
from bugnist_jax.training.optim import make_optimizer

WIDTH, HIDDEN = 0.0625, 32  # 4..32 channels: fast, same layout


def _torch_vgg(torch, batch_norm: bool, num_classes: int):
  """torchvision's VGG19 layout built from torch.nn (torchvision is not installed here)."""
  nn = torch.nn
  layers, cin = [], 3
  for channels, n in GROUPS:
    cout = int(round(channels * WIDTH))
    for _ in range(n):
      layers += [nn.Conv2d(cin, cout, 3, padding=1)]
      layers += [nn.BatchNorm2d(cout)] if batch_norm else []
      layers += [nn.ReLU(inplace=True)]
      cin = cout
    layers.append(nn.MaxPool2d(2, 2))

  class VGG(nn.Module):
    def __init__(self):
      super().__init__()
      self.features = nn.Sequential(*layers)
      self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
      self.classifier = nn.Sequential(
        nn.Linear(cin * 49, HIDDEN),
        nn.ReLU(True),
        nn.Dropout(),
        nn.Linear(HIDDEN, HIDDEN),
        nn.ReLU(True),
        nn.Dropout(),
        nn.Linear(HIDDEN, num_classes),
      )

    def forward(self, x):
      return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

  torch.manual_seed(0)
  net = VGG()
  with torch.no_grad():  # non-trivial batch-norm statistics
    for m in net.modules():
      if isinstance(m, nn.BatchNorm2d):
        m.running_mean.uniform_(-0.2, 0.2)
        m.running_var.uniform_(0.5, 1.5)
        m.weight.uniform_(0.5, 1.5)
        m.bias.uniform_(-0.1, 0.1)
  return net.eval()


def _ours(weights: str, batch_norm: bool, shape, num_classes=7, replace_head=False):
  return get_model(
    "vgg19",
    input_shape=shape,
    num_classes=num_classes,
    batch_norm=batch_norm,
    width=WIDTH,
    hidden=HIDDEN,
    weights=weights,
    replace_head=replace_head,
    rngs=nnx.Rngs(1),
  )


@pytest.mark.parametrize(
  "batch_norm,suffix,shape", [(False, ".pth", (32, 32)), (True, ".safetensors", (64, 96))]
)
def test_loaded_weights_compute_torchs_function(tmp_path, batch_norm, suffix, shape):
  torch = pytest.importorskip("torch")
  net = _torch_vgg(torch, batch_norm, 7)
  path = tmp_path / f"vgg{suffix}"
  if suffix == ".pth":
    torch.save(net.state_dict(), path)
  else:
    safetensors_torch = pytest.importorskip("safetensors.torch")
    safetensors_torch.save_file({k: v.contiguous() for k, v in net.state_dict().items()}, path)
  x = np.random.default_rng(0).normal(size=(2, 3, *shape)).astype(np.float32)
  with torch.no_grad():
    expected = net(torch.from_numpy(x)).numpy()
    expected_fc2 = net.classifier[:5](
      torch.flatten(net.avgpool(net.features(torch.from_numpy(x))), 1)
    ).numpy()
  model = _ours(str(path), batch_norm, shape)
  f = nnx.view(model, deterministic=True, use_running_average=True, raise_if_not_found=False)
  xh = jnp.asarray(x.transpose(0, 2, 3, 1))
  run = nnx.jit(lambda m, x, stop=None: m.forward(x, stop=stop)[0], static_argnums=2)
  np.testing.assert_allclose(run(f, xh), expected, rtol=1e-4, atol=1e-4)
  # A replaced head is fresh, but everything up to it is torch's.
  fresh = _ours(str(path), batch_norm, shape, num_classes=3, replace_head=True)
  fresh = nnx.view(fresh, deterministic=True, use_running_average=True, raise_if_not_found=False)
  np.testing.assert_allclose(run(fresh, xh, "fc2"), expected_fc2, rtol=1e-4, atol=1e-4)
  assert run(fresh, xh).shape == (2, 3)


def test_full_width_keys_are_torchvisions():
  model = nnx.eval_shape(lambda: get_model("vgg19", rngs=nnx.Rngs(0)))
  keys = torch_key_map(model)
  assert len(keys) == 38  # 16 convs and 3 linears, weight and bias each
  assert keys["features.0.weight"][0].shape == (3, 3, 3, 64)
  assert keys["features.34.weight"][0].shape == (3, 3, 512, 512)  # the last conv
  assert keys["classifier.0.weight"][0].shape == (25088, 4096)
  assert keys["classifier.6.weight"][0].shape == (4096, 1000)
  bn = nnx.eval_shape(lambda: get_model("vgg19", batch_norm=True, rngs=nnx.Rngs(0)))
  bn_keys = torch_key_map(bn)
  assert len(bn_keys) == 16 * 7 + 6  # BN: weight, bias, running mean/var, num_batches_tracked
  assert bn_keys["features.49.weight"][0].shape == (3, 3, 512, 512)  # conv, BN, ReLU per conv
  assert bn_keys["features.50.running_var"][0].shape == (512,)
  assert "features.51.weight" not in bn_keys  # the ReLU


def test_adaptive_pool_matches_torch():
  torch = pytest.importorskip("torch")
  x = np.random.default_rng(1).normal(size=(2, 10, 3, 4)).astype(np.float32)
  expected = torch.nn.AdaptiveAvgPool2d(7)(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
  np.testing.assert_allclose(
    adaptive_avg_pool(jnp.asarray(x), 7), expected.transpose(0, 2, 3, 1), rtol=1e-6, atol=1e-6
  )


def test_bad_weight_files_raise_user_errors(tmp_path):
  torch = pytest.importorskip("torch")
  state = _torch_vgg(torch, False, 7).state_dict()
  with pytest.raises(UserError, match="does not exist"):
    _ours(str(tmp_path / "nope.pth"), False, (32, 32))
  cases = {
    "missing": ({k: v for k, v in state.items() if k != "features.2.bias"}, "features.2.bias"),
    "unexpected": ({**state, "extra.weight": torch.zeros(1)}, "extra.weight"),
    "shape": ({**state, "features.0.weight": torch.zeros(4, 3, 5, 5)}, "features.0.weight"),
  }
  for name, (bad, key) in cases.items():
    path = tmp_path / f"{name}.pth"
    torch.save(bad, path)
    with pytest.raises(UserError, match=key.replace(".", r"\.")):
      _ours(str(path), False, (32, 32))
  path = tmp_path / "code.pth"
  torch.save({"x": optax.adam}, path)  # pickled code: refused by weights_only=True
  with pytest.raises(UserError, match="weights-only"):
    _ours(str(path), False, (32, 32))


def test_frozen_stages_do_not_move():
  """train.freeze: optax masks the stages by name prefix; the others train."""
  model = get_model("cnn2d", arch=2, input_shape=(64, 64), num_classes=3, rngs=nnx.Rngs(0))
  cfg = config_defaults.base().train
  cfg.freeze = ("conv", "dense")
  optimizer = nnx.Optimizer(model, make_optimizer(cfg, 10), wrt=nnx.Param)
  before = jax.tree.map(jnp.copy, nnx.state(model, nnx.Param))
  x = jax.random.normal(jax.random.key(0), (4, 64, 64, 3))

  @nnx.jit
  def step(model, optimizer):
    loss = lambda m: optax.softmax_cross_entropy_with_integer_labels(m(x), jnp.arange(4) % 3)
    optimizer.update(model, nnx.grad(lambda m: loss(m).mean())(model))

  for _ in range(2):
    step(model, optimizer)
  after = nnx.state(model, nnx.Param)
  for stage, moves in (("conv1", False), ("conv3", False), ("dense1", False), ("logits", True)):
    leaves = zip(jax.tree.leaves(before[stage]), jax.tree.leaves(after[stage]), strict=True)
    assert any(not np.array_equal(a, b) for a, b in leaves) == moves, stage
