"""Parity of bugnist_jax.saliency with Captum on the same tiny 2D and 3D CNNs (float64).

The JAX models come from test_saliency.py, ported to PyTorch by tests/_torch_port.py.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")

from _torch_port import TorchCNN, close, models, to_jax_layout, to_torch  # noqa: E402

from bugnist_jax import saliency  # noqa: E402
from bugnist_jax.saliency.gradients import _smoothgrad_from_noise  # noqa: E402

TARGETS = [0, 2, 1]


pytestmark = pytest.mark.usefixtures("x64")  # float64 here, for tight comparisons


def test_models_agree(torch_pair):
  cnn, net = torch_pair
  close(cnn.f(cnn.x), net(to_torch(cnn.x)).detach().numpy(), rtol=1e-10)


def test_saliency(torch_pair):
  cnn, net = torch_pair
  theirs = captum_attr.Saliency(net).attribute(to_torch(cnn.x), target=TARGETS, abs=False)
  close(saliency.vanilla_gradient(cnn.f, cnn.x, jnp.array(TARGETS)), to_jax_layout(theirs))


@pytest.mark.parametrize("kind", saliency.SMOOTHGRAD_KINDS)
def test_noise_tunnel_with_the_same_noise(kind, monkeypatch, x64):
  """Captum draws its noise with one torch.normal call, for inputs repeated sample-minor
  ([b0 s0, b0 s1, ...]); the monkeypatched torch.normal returns our noise in that order.
  2D only, to keep the test quick: the 3D path is the same code (checked by test_saliency)."""
  cnn = models.model((8, 8), cin=2)
  net = TorchCNN(cnn.params)
  n = 4
  noise = 0.3 * jax.random.normal(jax.random.key(1), (n, *cnn.x.shape))
  ours = _smoothgrad_from_noise(cnn.f, cnn.x, jnp.array(TARGETS), noise=noise, kind=kind)
  ordered = np.moveaxis(np.asarray(noise), 0, 1).reshape(-1, *cnn.x.shape[1:])  # [B*n, ...]
  fake = torch.from_numpy(np.moveaxis(ordered, -1, 1).copy())

  def normal(mean, std, *args, **kwargs):
    assert tuple(std.shape) == tuple(fake.shape)
    return fake

  monkeypatch.setattr(torch, "normal", normal)
  tunnel = captum_attr.NoiseTunnel(captum_attr.Saliency(net))
  theirs = tunnel.attribute(
    to_torch(cnn.x), nt_type=kind, nt_samples=n, stdevs=1.0, target=TARGETS, abs=False
  )
  close(ours, to_jax_layout(theirs))


def test_integrated_gradients(torch_pair):
  cnn, net = torch_pair
  ours = saliency.integrated_gradients(cnn.f, cnn.x, jnp.array(TARGETS), steps=16, batch_size=5)
  ig = captum_attr.IntegratedGradients(net)
  theirs = ig.attribute(to_torch(cnn.x), target=TARGETS, n_steps=16, method="gausslegendre")
  close(ours, to_jax_layout(theirs))


def test_layer_grad_cam(torch_pair):
  cnn, net = torch_pair
  ours = saliency.grad_cam(cnn.features, cnn.head, cnn.x, jnp.array(TARGETS), upsample=False)
  theirs = captum_attr.LayerGradCam(net, net.relu2).attribute(
    to_torch(cnn.x), target=TARGETS, relu_attributions=True
  )
  close(ours, theirs.detach().numpy()[:, 0])
  # Upsampled: jax.image.resize 'linear' = torch interpolate(align_corners=False) upsampling.
  mode = "bilinear" if cnn.x.ndim == 4 else "trilinear"
  up = captum_attr.LayerAttribution.interpolate(theirs, cnn.x.shape[1:-1], mode)
  close(
    saliency.grad_cam(cnn.features, cnn.head, cnn.x, jnp.array(TARGETS)), up.detach().numpy()[:, 0]
  )


def test_guided_backprop(torch_pair):
  cnn, net = torch_pair
  ours = saliency.guided_backprop(cnn.f, cnn.x, jnp.array(TARGETS))
  theirs = captum_attr.GuidedBackprop(net).attribute(to_torch(cnn.x), target=TARGETS)
  close(ours, to_jax_layout(theirs))
  assert not np.allclose(ours, saliency.vanilla_gradient(cnn.f, cnn.x, jnp.array(TARGETS)))


def test_occlusion(torch_pair):
  cnn, net = torch_pair
  nd, channels = cnn.x.ndim - 2, cnn.x.shape[-1]
  window, stride = (3,) * nd, (2,) * nd
  ours = saliency.occlusion(
    cnn.f, cnn.x, jnp.array(TARGETS), window=window, stride=stride, baseline=0.25, batch_size=4
  )
  theirs = captum_attr.Occlusion(net).attribute(
    to_torch(cnn.x),
    sliding_window_shapes=(channels, *window),
    strides=(channels, *stride),
    baselines=0.25,
    target=TARGETS,
  )
  close(ours, to_jax_layout(theirs))
