"""Parity of the Quantus-catalogue metrics with Quantus itself, on the same arrays in 2D.

Each metric's own computation is Quantus's `evaluate_batch` (what `__call__` runs after its
preprocessing, which is left out: normalisation by the batch's largest value and `abs` are
applied here by hand where a metric has them). The model is our JAX CNN behind the two methods
Quantus reads (`shape_input`, `predict`), on channels-first arrays. Where Quantus draws random
numbers with numpy, its draw is replaced by ours (monkeypatch), so both see the same subsets,
noise and classes. Smooth MPRT's weight randomisation is torch's `reset_parameters` in Quantus
(not reproducible on our arrays): its denoising step is checked by hand instead.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _torch_port import import_peer, models

from bugnist_jax import saliency

quantus = import_peer("quantus")  # Quantus imports zennit, and zennit torchvision
TARGETS = np.array([0, 2, 1])


pytestmark = pytest.mark.usefixtures("x64")  # float64 here, for tight comparisons


class NumpyModel:
  """Our model as Quantus reads it: channels-first numpy in, logits out."""

  def __init__(self, f):
    self.f = f

  def shape_input(self, x, shape=None, channel_first=True, batched=True):
    return x

  def predict(self, x, **kwargs):
    return np.asarray(self.f(jnp.asarray(np.moveaxis(x, 1, -1))))


@pytest.fixture(scope="module")
def case(x64):
  """(cnn with one input channel, its channels-first x, signed maps [B, H, W], masks)."""
  cnn = models.model((8, 8), cin=1)
  maps = saliency.input_x_gradient(cnn.f, cnn.x, jnp.asarray(TARGETS))[..., 0]
  masks = np.zeros(maps.shape, bool)
  masks[:, 2:5, 1:6] = True
  return cnn, np.moveaxis(np.asarray(cnn.x), -1, 1), np.asarray(maps), masks


def test_faithfulness_correlation(case, monkeypatch):
  cnn, xq, maps, _ = case
  runs, size = 6, 10
  subsets = np.asarray(
    jax.vmap(jax.vmap(lambda k: jax.random.permutation(k, 64)[:size]))(
      jax.random.split(jax.random.key(1), runs * 3).reshape(runs, 3)
    )
  )
  draws = iter(subsets.reshape(-1, size))
  monkeypatch.setattr(np.random, "choice", lambda *a, **k: next(draws))
  metric = quantus.FaithfulnessCorrelation(
    nr_runs=runs, subset_size=size, perturb_baseline=0.0, normalise=False, disable_warnings=True
  )
  theirs = metric.evaluate_batch(NumpyModel(cnn.f), xq, TARGETS, maps[:, None])
  ours = saliency.faithfulness_correlation(
    cnn.f,
    cnn.x,
    jnp.asarray(maps),
    jnp.asarray(TARGETS),
    key=jax.random.key(1),
    num_runs=runs,
    subset_size=size,
    batch_size=4,
  )
  np.testing.assert_allclose(ours, theirs, rtol=1e-9)


def test_monotonicity_correlation(case):
  cnn, xq, maps, _ = case
  metric = quantus.MonotonicityCorrelation(
    nr_samples=2,
    features_in_step=4,
    perturb_baseline=0.5,
    abs=False,
    normalise=False,
    disable_warnings=True,
  )
  theirs = metric.evaluate_batch(NumpyModel(cnn.f), xq, TARGETS, maps[:, None])
  ours = saliency.monotonicity_correlation(
    cnn.f,
    cnn.x,
    jnp.asarray(maps),
    jnp.asarray(TARGETS),
    num_samples=2,
    features_in_step=4,
    baseline=0.5,
    batch_size=5,
  )
  np.testing.assert_allclose(ours, theirs, rtol=1e-6)  # our Spearman ranks in float32
  # Uniform noise (Quantus's default baseline): drawn from the key, chunking does not matter.
  run = lambda bs: saliency.monotonicity_correlation(
    cnn.f,
    cnn.x,
    jnp.asarray(maps),
    key=jax.random.key(3),
    num_samples=3,
    features_in_step=8,
    batch_size=bs,
  )
  np.testing.assert_allclose(run(4), run(None), rtol=1e-10)


def test_infidelity(case):
  cnn, xq, maps, _ = case
  metric = quantus.Infidelity(
    perturb_patch_sizes=[2], n_perturb_samples=1, perturb_baseline=0.0, disable_warnings=True
  )
  theirs = metric.evaluate_batch(NumpyModel(cnn.f), xq, TARGETS, maps[:, None])
  ours = saliency.infidelity(
    cnn.f, cnn.x, jnp.asarray(maps), jnp.asarray(TARGETS), patch_size=2, batch_size=5
  )
  np.testing.assert_allclose(ours, theirs, rtol=1e-9)


@pytest.mark.parametrize("which", ["max", "avg"])
def test_sensitivity(case, monkeypatch, which):
  cnn, xq, _, _ = case
  explain = lambda x, t: saliency.vanilla_gradient(cnn.f, x, t)
  n = 4
  noise = jax.random.uniform(jax.random.key(2), (n, *cnn.x.shape), cnn.x.dtype, -0.2, 0.2)
  draws = iter(np.moveaxis(np.asarray(noise), -1, 2).reshape(n, 3, -1))
  monkeypatch.setattr(np.random, "uniform", lambda *a, **k: next(draws))
  cls = quantus.MaxSensitivity if which == "max" else quantus.AvgSensitivity
  metric = cls(nr_samples=n, lower_bound=0.2, disable_warnings=True)
  metric.explain_func = lambda model, inputs, targets: np.moveaxis(
    np.asarray(explain(jnp.asarray(np.moveaxis(inputs, 1, -1)), jnp.asarray(targets))), -1, 1
  )
  metric.explain_func_kwargs = {}
  a = np.moveaxis(np.asarray(explain(cnn.x, jnp.asarray(TARGETS))), -1, 1)
  theirs = metric.evaluate_batch(NumpyModel(cnn.f), xq, TARGETS, a)
  fn = saliency.max_sensitivity if which == "max" else saliency.avg_sensitivity
  ours = fn(
    explain, cnn.x, jnp.asarray(TARGETS), key=jax.random.key(2), num_samples=n, batch_size=3
  )
  np.testing.assert_allclose(ours, theirs, rtol=1e-9)


@pytest.mark.parametrize("similarity", ["spearman", "pearson"])
def test_random_logit(case, monkeypatch, similarity):
  cnn, xq, _, _ = case
  explain = lambda x, t: saliency.vanilla_gradient(cnn.f, x, t)[..., 0]
  offsets = np.array([1, 0, 1])
  monkeypatch.setattr(np.random, "randint", lambda *a, **k: offsets)
  func = getattr(quantus.similarity_func, f"correlation_{similarity}")
  metric = quantus.RandomLogit(num_classes=3, similarity_func=func, disable_warnings=True)
  metric.explain_func = lambda model, inputs, targets: np.asarray(
    explain(jnp.asarray(np.moveaxis(inputs, 1, -1)), jnp.asarray(targets))
  )[:, None]
  metric.explain_func_kwargs = {}
  a = np.asarray(explain(cnn.x, jnp.asarray(TARGETS)))[:, None]
  theirs = np.asarray(metric.evaluate_batch(NumpyModel(cnn.f), xq, TARGETS, a))
  from bugnist_jax.saliency.quantus_robustness import _random_logit_from_offsets

  ours = _random_logit_from_offsets(
    explain, cnn.x, jnp.asarray(TARGETS), jnp.asarray(offsets), similarity
  )
  rtol = 1e-6 if similarity == "spearman" else 1e-9  # our Spearman ranks in float32
  np.testing.assert_allclose(ours, np.diag(theirs) if theirs.ndim == 2 else theirs, rtol=rtol)
  drawn = saliency.random_logit(
    explain, cnn.x, jnp.asarray(TARGETS), key=jax.random.key(0), num_classes=3
  )
  assert drawn.shape == (3,) and np.isfinite(np.asarray(drawn)).all()


def test_map_metrics(case):
  _, _, maps, masks = case
  a = np.abs(maps)
  np.testing.assert_allclose(
    saliency.sparseness(jnp.asarray(maps)),
    quantus.Sparseness().evaluate_batch(xq_dummy(a), a.copy()),
    rtol=1e-6,
  )
  np.testing.assert_allclose(
    saliency.complexity(jnp.asarray(maps)),
    quantus.Complexity().evaluate_batch(xq_dummy(a), a.copy()),
    rtol=1e-6,
  )
  theirs = quantus.TopKIntersection(k=10, disable_warnings=True).evaluate_batch(
    a_batch=maps.reshape(3, -1), s_batch=masks.reshape(3, -1).astype(float)
  )
  np.testing.assert_allclose(
    saliency.top_k_intersection(jnp.asarray(maps), jnp.asarray(masks), k=10), theirs
  )
  theirs = quantus.PointingGame(disable_warnings=True).evaluate_batch(a_batch=maps, s_batch=masks)
  np.testing.assert_allclose(saliency.pointing_game(jnp.asarray(maps), jnp.asarray(masks)), theirs)
  constant = np.zeros_like(maps)  # every voxel a maximum: Quantus's tie rule, ours by default
  theirs = quantus.PointingGame(disable_warnings=True).evaluate_batch(
    a_batch=constant, s_batch=masks
  )
  np.testing.assert_allclose(
    saliency.pointing_game(jnp.asarray(constant), jnp.asarray(masks)), theirs
  )


def xq_dummy(a):
  return np.zeros((a.shape[0], 1, *a.shape[1:]))


def test_smooth_mprt_denoises_then_randomises(case):
  cnn, _, _, _ = case
  params = cnn.params
  explain = lambda p, x: saliency.vanilla_gradient(
    lambda v: models.head(p, models.features(p, v)), x, jnp.asarray(TARGETS)
  )[..., 0]
  key = jax.random.key(4)
  smooth = saliency.smoothed(explain, key, num_samples=3, noise=0.1)
  axes = (1, 2, 3)
  std = 0.1 * (cnn.x.max(axes, keepdims=True) - cnn.x.min(axes, keepdims=True))
  noise = jax.random.normal(key, (2, *cnn.x.shape)) * std
  by_hand = (
    explain(params, cnn.x + noise[0]) + explain(params, cnn.x + noise[1]) + explain(params, cnn.x)
  ) / 3
  np.testing.assert_allclose(smooth(params, cnn.x), by_hand, rtol=1e-10)
  out = saliency.smooth_mprt(explain, params, ["w", "k2", "k1"], cnn.x, key=key, num_samples=3)
  assert out["layers"] == ["original", "w", "k2", "k1"]
  np.testing.assert_allclose(out["spearman"][0], 1.0)
  assert (np.asarray(out["spearman"][-1]) < 0.9).all()
