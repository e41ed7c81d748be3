"""Targets ([B, T], score functions), the occlusion stride check, Score-CAM's conventions, the
CAM variants, Gradient SHAP and feature ablation, on the tiny float64 CNNs of test_saliency."""

import importlib.util
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bugnist_jax import saliency
from bugnist_jax.saliency.shap import _gradient_shap_from_draws

_spec = importlib.util.spec_from_file_location(
  "_saliency_models", Path(__file__).with_name("test_saliency.py")
)
models = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(models)
TARGETS = jnp.array([0, 2, 1])


pytestmark = pytest.mark.usefixtures("x64")  # float64 here, for tight comparisons


@pytest.fixture(scope="module", params=["2d", "3d"])
def cnn(request, x64):
  return models.model((8, 8), cin=2) if request.param == "2d" else models.model((4, 6, 6), cin=1)


# --- targets ---

ON_F = {
  "vanilla": lambda m, t: saliency.vanilla_gradient(m.f, m.x, t),
  "ig": lambda m, t: saliency.integrated_gradients(m.f, m.x, t, steps=4, batch_size=3),
  "occlusion": lambda m, t: saliency.occlusion(m.f, m.x, t, window=2, stride=2, batch_size=5),
  "guided": lambda m, t: saliency.guided_backprop(m.f, m.x, t),
  "grad_cam": lambda m, t: saliency.grad_cam(m.features, m.head, m.x, t),
  "x_grad_cam": lambda m, t: saliency.x_grad_cam(m.features, m.head, m.x, t),
  "ablation_cam": lambda m, t: saliency.ablation_cam(m.features, m.head, m.x, t, batch_size=3),
  "score_cam": lambda m, t: saliency.score_cam(m.features, m.head, m.x, t, batch_size=3),
  "feature_ablation": lambda m, t: saliency.feature_ablation(
    m.f, m.x, t, feature_mask=saliency.block_mask(m.x.shape[1:-1], 3)[0], num_features=27
  ),
}


@pytest.mark.parametrize("method", sorted(ON_F))
def test_several_targets_per_sample_equal_one_call_per_target(cnn, method):
  run = ON_F[method]
  many = jnp.stack([TARGETS, (TARGETS + 1) % 3], axis=1)  # [B, 2]
  maps = run(cnn, many)
  assert maps.shape[:2] == (3, 2)
  for t in range(2):
    np.testing.assert_allclose(maps[:, t], run(cnn, many[:, t]), rtol=1e-9, atol=1e-12)


def test_a_target_function_scores_any_output(cnn):
  """A score of the model's output (here a sum of two logits, as a region sum would be) gives
  the map of that score; with a pick of one logit it is that class's map."""
  score = lambda out: out[:, 0] + out[:, 2]
  ours = saliency.vanilla_gradient(cnn.f, cnn.x, score)
  both = saliency.vanilla_gradient(cnn.f, cnn.x, jnp.zeros(3, int)) + saliency.vanilla_gradient(
    cnn.f, cnn.x, jnp.full(3, 2)
  )
  np.testing.assert_allclose(ours, both, rtol=1e-10)
  one = lambda out: out[:, 1]
  np.testing.assert_allclose(
    saliency.grad_cam(cnn.features, cnn.head, cnn.x, one),
    saliency.grad_cam(cnn.features, cnn.head, cnn.x, jnp.ones(3, int)),
    rtol=1e-10,
  )
  # A model that does not return [B, K]: a dense map [B, *spatial] and a masked sum of it.
  dense = lambda x: jnp.sum(x, -1) ** 2
  mask = jnp.zeros(cnn.x.shape[1:-1]).at[(0,) * (cnn.x.ndim - 2)].set(1.0)
  region = lambda out: jnp.sum(out * mask, axis=tuple(range(1, out.ndim)))
  grads = saliency.vanilla_gradient(dense, cnn.x, region)
  expected = 2 * jnp.sum(cnn.x, -1, keepdims=True) * mask[..., None]
  np.testing.assert_allclose(grads, jnp.broadcast_to(expected, cnn.x.shape), rtol=1e-12)
  with pytest.raises(ValueError, match="targets"):
    saliency.vanilla_gradient(cnn.f, cnn.x, lambda out: out)


# --- fixes ---


def test_occlusion_rejects_a_stride_past_the_window(cnn):
  """On main this returned NaN for the voxels no window covered."""
  with pytest.raises(ValueError, match="stride"):
    saliency.occlusion(cnn.f, cnn.x, TARGETS, window=2, stride=3)
  # A window that spans a whole dim may have any stride there (one window covers it).
  full = tuple(cnn.x.shape[1:-1])
  maps = saliency.occlusion(cnn.f, cnn.x, TARGETS, window=full, stride=(9,) * len(full))
  assert np.isfinite(np.asarray(maps)).all()


def _with_constant_channel(m):
  """m's features with a constant channel appended, and a head that ignores it."""
  feats = lambda x: jnp.concatenate([m.features(x), jnp.ones(m.features(x).shape[:-1] + (1,))], -1)
  head = lambda a: m.head(a[..., :-1])
  return feats, head


@pytest.mark.parametrize("convention", saliency.SCORE_CAM_CONVENTIONS)
def test_score_cam_skips_constant_channels(cnn, convention):
  """On main a constant channel added p(blank) * A_k everywhere."""
  feats, head = _with_constant_channel(cnn)
  for cam in (saliency.score_cam, partial(saliency.is_cam, steps=2)):
    ours = cam(feats, head, cnn.x, TARGETS, convention=convention, upsample=False)
    plain = cam(cnn.features, cnn.head, cnn.x, TARGETS, convention=convention, upsample=False)
    np.testing.assert_allclose(ours, plain, rtol=1e-10, atol=1e-12)


def test_score_cam_conventions_by_hand(cnn):
  acts = cnn.features(cnn.x)
  b, n = acts.shape[0], acts.shape[-1]
  scores = {"prob": np.zeros((n, b)), "logit": np.zeros((n, b))}
  for k in range(n):
    mask = jax.image.resize(acts[..., k], (b, *cnn.x.shape[1:-1]), "linear")
    axes = tuple(range(1, mask.ndim))
    lo, hi = mask.min(axes, keepdims=True), mask.max(axes, keepdims=True)
    logits = cnn.f(cnn.x * ((mask - lo) / (hi - lo))[..., None])
    t = np.asarray(TARGETS)
    scores["logit"][k] = np.asarray(logits)[np.arange(b), t]
    scores["prob"][k] = np.asarray(jax.nn.softmax(logits))[np.arange(b), t]
  softmax = np.exp(scores["logit"]) / np.exp(scores["logit"]).sum(0)
  for convention, w in (("reference", scores["prob"]), ("grad_cam", softmax)):
    hand = np.maximum(np.einsum("kb,b...k->b...", w, np.asarray(acts)), 0)
    ours = saliency.score_cam(
      cnn.features, cnn.head, cnn.x, TARGETS, convention=convention, upsample=False
    )
    np.testing.assert_allclose(ours, hand, rtol=1e-9, atol=1e-12)
  with pytest.raises(ValueError, match="convention"):
    saliency.score_cam(cnn.features, cnn.head, cnn.x, convention="torchcam")


# --- CAM variants ---


def test_gradient_cam_variants_by_hand(cnn):
  acts = np.asarray(cnn.features(cnn.x))
  grads = np.asarray(cnn.params["w"]).T[np.asarray(TARGETS)].reshape(acts.shape)  # dense head
  axes = tuple(range(1, acts.ndim - 1))
  xgrad = (grads * acts).sum(axes, keepdims=True) / (acts.sum(axes, keepdims=True) + 1e-7)
  hand = {
    "x_grad_cam": (xgrad * acts).sum(-1),
    "hires_cam": (grads * acts).sum(-1),
    "grad_cam_elementwise": np.maximum(grads * acts, 0).sum(-1),
  }
  for name, expected in hand.items():
    cam = getattr(saliency, name)(cnn.features, cnn.head, cnn.x, TARGETS, upsample=False)
    np.testing.assert_allclose(cam, np.maximum(expected, 0), rtol=1e-9, atol=1e-12, err_msg=name)
    up = getattr(saliency, name)(cnn.features, cnn.head, cnn.x, TARGETS)
    assert up.shape == cnn.x.shape[:-1]


def test_ablation_cam_by_hand(cnn):
  acts = np.asarray(cnn.features(cnn.x))
  t = np.asarray(TARGETS)
  pick = lambda a: np.asarray(cnn.head(jnp.asarray(a)))[np.arange(len(t)), t]
  score = pick(acts)
  weights = []
  for k in range(acts.shape[-1]):
    ablated = acts.copy()
    ablated[..., k] = 0
    weights.append((score - pick(ablated)) / score)
  hand = np.maximum(np.einsum("kb,b...k->b...", np.asarray(weights), acts), 0)
  for batch_size in (None, 3):
    cam = saliency.ablation_cam(
      cnn.features, cnn.head, cnn.x, TARGETS, upsample=False, batch_size=batch_size
    )
    np.testing.assert_allclose(cam, hand, rtol=1e-9, atol=1e-12)


def test_eigen_cam_is_the_first_principal_component(cnn):
  acts = np.asarray(cnn.features(cnn.x))
  cam = np.asarray(saliency.eigen_cam(cnn.features, cnn.x, upsample=False))
  for b in range(acts.shape[0]):
    flat = acts[b].reshape(-1, acts.shape[-1])
    centred = flat - flat.mean(0)
    projection = centred @ np.linalg.svd(centred)[2][0]
    sign = np.sign(projection @ flat.mean(-1))  # our documented choice of sign
    np.testing.assert_allclose(cam[b].ravel(), np.maximum(sign * projection, 0), atol=1e-9)


def test_multi_layer_cam_averages_normalised_maps(cnn):
  one = saliency.multi_layer_cam(saliency.grad_cam, [(cnn.features, cnn.head)], cnn.x, TARGETS)
  cam = np.asarray(saliency.grad_cam(cnn.features, cnn.head, cnn.x, TARGETS))
  axes = tuple(range(1, cam.ndim))
  unit = lambda a: (
    (a - a.min(axes, keepdims=True))
    / (a.max(axes, keepdims=True) - a.min(axes, keepdims=True) + 1e-7)
  )
  # Normalising before or after the (linear) resize agrees to rounding; how much rounding
  # depends on the CPU's XLA code, so the tolerance is float32's, far below a wrong fusion.
  np.testing.assert_allclose(one, unit(unit(cam)), rtol=1e-6, atol=1e-7)
  # The input layer as a second "layer" (features = identity) changes the fused map.
  identity = (lambda x: x, cnn.f)
  two = saliency.multi_layer_cam(saliency.grad_cam, [(cnn.features, cnn.head), identity], cnn.x)
  assert two.shape == cnn.x.shape[:-1] and float(two.max()) == pytest.approx(1.0, abs=1e-6)


# --- Gradient SHAP and feature ablation ---


def test_gradient_shap_is_the_mean_of_its_draws(cnn):
  """Each draw: grad(b + a (x + e - b)) * (x + e - b), averaged; checked term by term."""
  rng = np.random.default_rng(5)
  n = 5
  draws = dict(
    baselines=jnp.asarray(rng.normal(size=(n, *cnn.x.shape))),
    alphas=jnp.asarray(rng.uniform(size=(n, 3))),
    noise=jnp.asarray(0.1 * rng.normal(size=(n, *cnn.x.shape))),
  )
  ours = _gradient_shap_from_draws(cnn.f, cnn.x, TARGETS, **draws, batch_size=2)
  expected = 0
  for b, a, e in zip(draws["baselines"], draws["alphas"], draws["noise"], strict=True):
    diff = cnn.x + e - b
    point = b + a.reshape(-1, *(1,) * (cnn.x.ndim - 1)) * diff
    expected = expected + saliency.vanilla_gradient(cnn.f, point, TARGETS) * diff / n
  np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-12)


def test_gradient_shap_is_reproducible_and_chunk_independent(cnn):
  baselines = jnp.stack([jnp.zeros(cnn.x.shape[1:]), 0.5 * jnp.ones(cnn.x.shape[1:])])
  run = lambda bs, seed=0: saliency.gradient_shap(
    cnn.f,
    cnn.x,
    TARGETS,
    baselines=baselines,
    key=jax.random.key(seed),
    num_samples=5,
    stdev=0.1,
    batch_size=bs,
  )
  ref = run(None)
  np.testing.assert_allclose(run(2), ref, rtol=1e-10, atol=1e-14)
  assert not np.allclose(run(None, seed=1), ref)
  with pytest.raises(ValueError, match="baselines"):
    saliency.gradient_shap(cnn.f, cnn.x, baselines=cnn.x[0], key=jax.random.key(0))


def test_feature_ablation_on_a_linear_model_and_as_occlusion(cnn):
  rng = np.random.default_rng(3)
  w = jnp.asarray(rng.normal(size=(cnn.x[0].size, 3)))
  f = lambda x: x.reshape(x.shape[0], -1) @ w
  ids, count = saliency.block_mask(cnn.x.shape[1:-1], 2)
  maps = saliency.feature_ablation(
    f, cnn.x, TARGETS, feature_mask=ids, num_features=count, baseline=0.5, batch_size=4
  )
  contrib = (cnn.x - 0.5) * w.T[TARGETS].reshape(cnn.x.shape)  # a linear model: drops add up
  per_region = jax.vmap(lambda c: jax.ops.segment_sum(c.sum(-1).ravel(), ids.ravel(), count))(
    contrib
  )
  expected = per_region[:, ids][..., None]
  np.testing.assert_allclose(maps, jnp.broadcast_to(expected, cnn.x.shape), rtol=1e-9)
  # Non-overlapping windows on the same grid: occlusion's map.
  occ = saliency.occlusion(cnn.f, cnn.x, TARGETS, window=2, stride=2, baseline=0.5)
  abl = saliency.feature_ablation(
    cnn.f, cnn.x, TARGETS, feature_mask=ids, num_features=count, baseline=0.5
  )
  np.testing.assert_allclose(abl, occ, rtol=1e-9, atol=1e-12)
