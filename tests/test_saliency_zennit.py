"""Parity of `saliency.lrp` with zennit on the same tiny 2D and 3D CNNs (float64): every rule
and composite, the first-layer zbox, and batch norm merged into the preceding convolution.

zennit imports torchvision at import time; `_torch_port.import_peer` supplies the stand-in of
tests/peer_stubs when no working torchvision loads (zennit's LRP does not use it).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from _torch_port import TorchCNN, close, import_peer, models, to_jax_layout, to_torch  # noqa: E402

from bugnist_jax import saliency  # noqa: E402

zennit = import_peer("zennit")
from zennit import composites as zc  # noqa: E402
from zennit import rules as zr  # noqa: E402
from zennit import types as zt  # noqa: E402
from zennit.attribution import Gradient  # noqa: E402
from zennit.canonizers import SequentialMergeBatchNorm  # noqa: E402

TARGETS = [0, 2, 1]


pytestmark = pytest.mark.usefixtures("x64")  # float64 here, for tight comparisons


def zennit_lrp(net, x, composite, canonizers=()):
  """zennit's relevance at the input for an output relevance of the target logit."""
  one_hot = torch.eye(3, dtype=torch.float64)[TARGETS]
  if canonizers:
    composite.canonizers = list(canonizers)
  with Gradient(model=net, composite=composite) as attributor:
    _, relevance = attributor(to_torch(x).requires_grad_(True), lambda out: out * one_hot)
  return to_jax_layout(relevance)


def every_layer(rule):
  return zc.LayerMapComposite([(zt.Activation, zr.Pass()), (zt.Linear, rule)])


RULES = {
  "epsilon": (dict(rule="epsilon", epsilon=1e-3), lambda lo, hi: every_layer(zr.Epsilon(1e-3))),
  "gamma": (dict(rule="gamma", gamma=0.5), lambda lo, hi: every_layer(zr.Gamma(gamma=0.5))),
  "zplus": (dict(rule="zplus"), lambda lo, hi: every_layer(zr.ZPlus())),
  "alpha_beta": (
    dict(rule="alpha_beta", alpha=3.0, beta=2.0),
    lambda lo, hi: every_layer(zr.AlphaBeta(alpha=3.0, beta=2.0)),
  ),
  "epsilon_plus": (dict(rule="epsilon_plus"), lambda lo, hi: zc.EpsilonPlus()),
  "epsilon_alpha2_beta1": (
    dict(rule="epsilon_alpha2_beta1"),
    lambda lo, hi: zc.EpsilonAlpha2Beta1(),
  ),
  "epsilon_gamma_box": (
    dict(rule="epsilon_gamma_box"),
    lambda lo, hi: zc.EpsilonGammaBox(low=lo, high=hi),
  ),
  "zbox_then_epsilon": (
    dict(rule="epsilon", first_rule="zbox"),
    lambda lo, hi: zc.SpecialFirstLayerMapComposite(
      layer_map=[(zt.Activation, zr.Pass()), (zt.Linear, zr.Epsilon())],
      first_map=[(zt.Linear, zr.ZBox(low=lo, high=hi))],
    ),
  ),
}


@pytest.mark.parametrize("name", sorted(RULES))
def test_lrp_matches_zennit(torch_pair, name):
  cnn, net = torch_pair
  kwargs, composite = RULES[name]
  low, high = -3.0, 3.0  # bounds of the standard-normal test inputs
  ours = saliency.lrp(cnn.f, cnn.x, jnp.array(TARGETS), low=low, high=high, **kwargs)
  theirs = zennit_lrp(net, cnn.x, composite(low, high))
  close(ours, theirs, rtol=1e-6)
  assert not np.allclose(ours, saliency.input_x_gradient(cnn.f, cnn.x, jnp.array(TARGETS))) or (
    name == "epsilon"
  )


class _ChannelsLastFlatten(torch.nn.Module):
  def forward(self, x):
    return torch.movedim(x, 1, -1).flatten(1)


def test_batch_norm_is_merged_into_the_convolution(x64):
  """A conv -> batch norm -> relu model: zennit with its SequentialMergeBatchNorm canonizer."""
  cnn = models.model((8, 8), cin=2)
  rng = np.random.default_rng(7)
  bn = {
    "mean": rng.normal(size=3) * 0.2,
    "var": rng.uniform(0.5, 2.0, size=3),
    "scale": rng.normal(size=3),  # signed: merging must flip the weights' signs
    "bias": rng.normal(size=3) * 0.1,
  }
  p = cnn.params

  def f(x):
    h = models.conv(x, p["k1"], p["b1"])
    h = (h - bn["mean"]) / jnp.sqrt(bn["var"] + 1e-5) * bn["scale"] + bn["bias"]
    h = jax.nn.relu(models.conv(models.maxpool(jax.nn.relu(h)), p["k2"], p["b2"]))
    return models.head(p, h)

  port = TorchCNN(p)
  norm = torch.nn.BatchNorm2d(3).double().eval()
  with torch.no_grad():
    for name, attr in (("mean", "running_mean"), ("var", "running_var")):
      getattr(norm, attr).copy_(torch.from_numpy(bn[name]))
    norm.weight.copy_(torch.from_numpy(bn["scale"]))
    norm.bias.copy_(torch.from_numpy(bn["bias"]))
  net = torch.nn.Sequential(
    port.conv1, norm, torch.nn.ReLU(), port.pool, port.conv2, torch.nn.ReLU(),
    _ChannelsLastFlatten(), port.dense,
  )  # fmt: skip
  np.testing.assert_allclose(net(to_torch(cnn.x)).detach().numpy(), f(cnn.x), rtol=1e-10)
  for rule, composite in (("epsilon_plus", zc.EpsilonPlus()), ("gamma", every_layer(zr.Gamma()))):
    ours = saliency.lrp(f, cnn.x, jnp.array(TARGETS), rule=rule)
    theirs = zennit_lrp(net, cnn.x, composite, canonizers=[SequentialMergeBatchNorm()])
    # zennit leaves the merged norm as x / sqrt(1 + eps), 5e-6 short of the identity.
    np.testing.assert_allclose(ours, theirs, rtol=2e-5, atol=1e-5 * np.abs(theirs).max())
