"""Parity of the CAMs with pytorch-grad-cam (the `grad-cam` package, 1.5.7) on the same tiny CNNs.

The CAM layer is the first ReLU, at the input's resolution, so pytorch-grad-cam's final resize
is the identity in 2D and 3D and the maps compare exactly (its maps are min-max normalised
after the ReLU, float32). Fusion of two layers (its list of target layers) is compared in 2D,
where it resizes with OpenCV's bilinear rule (= ours); in 3D it resizes with a cubic spline
(scipy's zoom), which is not ours. In 3D its ScoreCAM (a 2D upsampling layer) and AblationCAM
(4-D indexing) fail, so there we check that they still fail (a newer release that supports 3D
should then be compared) and that ours work; its Grad-CAM++ and XGrad-CAM reduce over every
spatial axis since 1.5 (the 5-D failure of its issue #583 is fixed) and are compared.
pytorch-grad-cam imports torchvision; `_torch_port.import_peer` supplies the stand-in of
tests/peer_stubs when no working one loads.
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


pytestmark = pytest.mark.usefixtures("x64")  # float64 here, for tight comparisons


def split_at_relu1(p: dict, before_relu: bool = False):
  """(features, head) of the test CNN with parameters `p`, split at the first ReLU's output
  (or its input, the first conv's output)."""
  conv1 = lambda x: models.conv(x, p["k1"], p["b1"])
  rest = lambda a: models.head(p, jax.nn.relu(models.conv(models.maxpool(a), p["k2"], p["b2"])))
  if before_relu:
    return conv1, lambda a: rest(jax.nn.relu(a))
  return lambda x: jax.nn.relu(conv1(x)), rest


@pytest.fixture(scope="module", params=[((8, 8), 2), ((4, 6, 6), 1)], ids=["2d", "3d"])
def cnn(request, x64):
  spatial, cin = request.param
  return models.model(spatial, cin=cin)


def unit(cam):
  """pytorch-grad-cam's scaling without the resize: `scale_cam_image` per layer, then again
  after the mean over layers (the 1e-7 in each matters for maps whose maximum is small)."""
  cam = np.asarray(cam, np.float64)
  axes = tuple(range(1, cam.ndim))
  for _ in range(2):
    cam = cam - cam.min(axes, keepdims=True)
    cam = cam / (1e-7 + cam.max(axes, keepdims=True))
  return cam


def theirs(cls, params, x, layers=("relu1",)):
  """pytorch-grad-cam's maps on a fresh port (a failed AblationCAM leaves its layer swapped)."""
  net = TorchCNN(params)
  with cls(model=net, target_layers=[getattr(net, n) for n in layers]) as cam:
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
ONLY_2D = {"ScoreCAM", "AblationCAM"}  # pytorch-grad-cam 1.5.7 fails on 5-D activations


def scaled(params: dict, factor: float) -> dict:
  """The same CNN with its logits multiplied by `factor`."""
  return {**params, "w": params["w"] * factor, "b": params["b"] * factor}


@pytest.mark.parametrize("name", sorted(OURS))
def test_cams_match_pytorch_grad_cam(cnn, name):
  params, layer = cnn.params, "relu1"
  if name == "GradCAMPlusPlus":
    # Its weights read dS/dA where A = 0, which the max pool after relu1 splits among tied
    # zeros (JAX: equally; torch: to one), so it is compared at conv1. It is not invariant to
    # the logits' scale, and pytorch-grad-cam adds 1e-6 to its denominator (peers.md, D8):
    # with logits x 1000 (gradients x 1000) that eps is negligible.
    params, layer = scaled(cnn.params, 1e3), "conv1"
  first, rest = split_at_relu1(params, before_relu=layer == "conv1")
  ours = OURS[name](first, rest, cnn.x, jnp.array(TARGETS))
  if name in ONLY_2D and cnn.x.ndim == 5:
    with pytest.raises((RuntimeError, ValueError)):
      theirs(getattr(gc, name), params, cnn.x)
    assert np.isfinite(np.asarray(ours)).all() and np.asarray(ours).max() > 0
    return
  ref = theirs(getattr(gc, name), params, cnn.x, (layer,))
  np.testing.assert_allclose(unit(ours), ref, rtol=2e-5, atol=2e-6)  # theirs is float32


def test_eigen_cam_matches_up_to_the_sign_of_the_component(cnn):
  first, _ = split_at_relu1(cnn.params)
  acts = np.moveaxis(np.asarray(first(cnn.x)), -1, 1)
  projection = get_2d_projection(acts)  # pytorch-grad-cam's, float32, sign as LAPACK gives
  ours = np.asarray(saliency.eigen_cam(first, cnn.x, upsample=False))
  for b in range(len(ours)):
    candidates = [np.maximum(s * projection[b], 0) for s in (1, -1)]
    assert any(np.allclose(ours[b], c, rtol=1e-5, atol=1e-6) for c in candidates), b


def test_fusion_of_two_layers_matches_pytorch_grad_cam(x64):
  cnn = models.model((8, 8), cin=2)
  splits = [split_at_relu1(cnn.params), (cnn.features, cnn.head)]
  ref = theirs(gc.GradCAM, cnn.params, cnn.x, ("relu1", "relu2"))
  ours = saliency.multi_layer_cam(saliency.grad_cam, splits, cnn.x, jnp.array(TARGETS))
  np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5)
