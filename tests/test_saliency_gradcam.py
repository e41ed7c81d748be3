"""Parity of the CAMs with pytorch-grad-cam (the `grad-cam` package) on the same tiny CNNs.

The CAM layer is the first ReLU, at the input's resolution, so pytorch-grad-cam's final resize
is the identity in 2D and 3D and the maps compare exactly (its maps are min-max normalised
after the ReLU, float32). Fusion of two layers (its list of target layers) is compared in 2D,
where it resizes with OpenCV's bilinear rule (= ours). In 3D its Grad-CAM++ and XGrad-CAM fail
(their weights reduce over two axes: pytorch-grad-cam issue #583), so only the methods it
supports there are compared. pytorch-grad-cam imports torchvision; `_torch_port.import_peer`
supplies the stand-in of tests/peer_stubs when no working one loads.
"""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from _torch_port import TorchCNN, import_peer, models, to_torch  # noqa: E402

from bugnist_jax import saliency  # noqa: E402

gc = import_peer("pytorch_grad_cam")
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402
from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection  # noqa: E402

TARGETS = [0, 2, 1]


@pytest.fixture(scope="module", autouse=True)
def x64():
  previous = jax.config.jax_enable_x64
  jax.config.update("jax_enable_x64", True)
  yield
  jax.config.update("jax_enable_x64", previous)


@pytest.fixture(scope="module", params=[((8, 8), 2), ((4, 6, 6), 1)], ids=["2d", "3d"])
def pair(request, x64):
  """(cnn, torch port, (features, head) split at the first ReLU)."""
  spatial, cin = request.param
  cnn = models.model(spatial, cin=cin)
  p = cnn.params
  first = lambda x: jax.nn.relu(models.conv(x, p["k1"], p["b1"]))
  rest = lambda a: models.head(p, jax.nn.relu(models.conv(models.maxpool(a), p["k2"], p["b2"])))
  return cnn, TorchCNN(p), (first, rest)


def unit(cam):
  """pytorch-grad-cam's scale_cam_image without the resize."""
  cam = np.asarray(cam, np.float64)
  axes = tuple(range(1, cam.ndim))
  cam = cam - cam.min(axes, keepdims=True)
  return cam / (1e-7 + cam.max(axes, keepdims=True))


def theirs(cls, net, x, layers, **kwargs):
  with cls(model=net, target_layers=layers, **kwargs) as cam:
    return cam(input_tensor=to_torch(x), targets=[ClassifierOutputTarget(t) for t in TARGETS])


OURS = {
  "GradCAM": saliency.grad_cam,
  "HiResCAM": saliency.hires_cam,
  "GradCAMElementWise": saliency.grad_cam_elementwise,
  "LayerCAM": saliency.layer_cam,
  "XGradCAM": saliency.x_grad_cam,
  "GradCAMPlusPlus": saliency.grad_cam_plus_plus,
  "ScoreCAM": partial(saliency.score_cam, convention="grad_cam", batch_size=2),
  "AblationCAM": partial(saliency.ablation_cam, batch_size=2),
}
ONLY_2D = {"XGradCAM", "GradCAMPlusPlus"}  # pytorch-grad-cam issue #583


@pytest.mark.parametrize("name", sorted(OURS))
def test_cams_match_pytorch_grad_cam(pair, name):
  cnn, net, (first, rest) = pair
  if name in ONLY_2D and cnn.x.ndim == 5:
    with pytest.raises(Exception):  # noqa: B017 - their failure on 5-D activations
      theirs(getattr(gc, name), net, cnn.x, [net.relu1])
    assert np.isfinite(np.asarray(OURS[name](first, rest, cnn.x, jnp.array(TARGETS)))).all()
    return
  ref = theirs(getattr(gc, name), net, cnn.x, [net.relu1])
  ours = unit(OURS[name](first, rest, cnn.x, jnp.array(TARGETS)))
  # Grad-CAM++: pytorch-grad-cam adds 1e-6 to its denominator (peers.md, D8); float32 maps.
  rtol = 1e-3 if name == "GradCAMPlusPlus" else 2e-5
  np.testing.assert_allclose(ours, ref, rtol=rtol, atol=rtol * 1e-1)


def test_eigen_cam_matches_up_to_the_sign_of_the_component(pair):
  cnn, _, (first, _) = pair
  acts = np.moveaxis(np.asarray(first(cnn.x)), -1, 1)
  projection = get_2d_projection(acts)  # pytorch-grad-cam's, float32, sign as LAPACK gives
  ours = np.asarray(saliency.eigen_cam(first, cnn.x, upsample=False))
  for b in range(len(ours)):
    candidates = [np.maximum(s * projection[b], 0) for s in (1, -1)]
    assert any(np.allclose(ours[b], c, rtol=1e-5, atol=1e-6) for c in candidates), b


def test_fusion_of_two_layers_matches_pytorch_grad_cam(x64):
  cnn = models.model((8, 8), cin=2)
  net = TorchCNN(cnn.params)
  p = cnn.params
  first = lambda x: jax.nn.relu(models.conv(x, p["k1"], p["b1"]))
  rest = lambda a: models.head(p, jax.nn.relu(models.conv(models.maxpool(a), p["k2"], p["b2"])))
  splits = [(first, rest), (cnn.features, cnn.head)]
  ref = theirs(gc.GradCAM, net, cnn.x, [net.relu1, net.relu2])
  ours = saliency.multi_layer_cam(saliency.grad_cam, splits, cnn.x, jnp.array(TARGETS))
  np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5)
