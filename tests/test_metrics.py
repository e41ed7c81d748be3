"""Tests for the saliency metrics (localisation, shortcut, faithfulness) on tiny 2D and 3D cases."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bugnist_jax import saliency as M

SHAPES = [(2, 6, 5), (2, 4, 5, 6)]  # [B, H, W] and [B, D, H, W]


def box_mask(shape):
  """A mask covering the first two voxels of every spatial axis (a small corner box)."""
  m = np.zeros(shape, bool)
  m[(slice(None),) + (slice(0, 2),) * (len(shape) - 1)] = True
  return jnp.asarray(m)


@pytest.mark.parametrize("shape", SHAPES)
def test_mask_as_map_is_perfect(shape):
  mask = box_mask(shape)
  maps = mask.astype(jnp.float32)
  for fn in (
    M.relevance_mass_accuracy,
    M.relevance_rank_accuracy,
    M.pointing_game,
    M.energy_pointing_game,
    M.mask_iou,
  ):
    np.testing.assert_allclose(fn(maps, mask), np.ones(shape[0]), err_msg=fn.__name__)


@pytest.mark.parametrize("shape", SHAPES)
def test_uniform_map_scores_volume_fraction(shape):
  mask = box_mask(shape)
  frac = float(mask[0].mean())
  maps = jnp.full(shape, 0.7)
  np.testing.assert_allclose(M.relevance_mass_accuracy(maps, mask), frac, rtol=1e-6)
  np.testing.assert_allclose(M.energy_pointing_game(maps, mask), frac, rtol=1e-6)


def test_localisation_hand_computed():
  mask = jnp.asarray([[1, 1, 0, 0], [0, 0, 1, 1]], bool).reshape(2, 2, 2)
  maps = jnp.asarray([[3.0, -1.0, 1.0, 0.0], [2.0, 0.0, 1.0, 1.0]]).reshape(2, 2, 2)
  # positive relevance: [3, 0, 1, 0] -> 3/4 inside; [2, 0, 1, 1] -> 2/4 inside
  np.testing.assert_allclose(M.relevance_mass_accuracy(maps, mask), [0.75, 0.5])
  # |map|: [3, 1, 1, 0] -> 4/5
  np.testing.assert_allclose(M.relevance_mass_accuracy(maps, mask, use_abs=True)[0], 0.8)
  # top-2 voxels: {0, 2} -> 1/2 inside; sample 1: {0, then 2 (tie 2/3 by index)} -> 1/2
  np.testing.assert_allclose(M.relevance_rank_accuracy(maps, mask), [0.5, 0.5])
  np.testing.assert_allclose(M.pointing_game(maps, mask), [1.0, 0.0])
  # min-max normalised [1, 0, .5, .25] -> 1/1.75 inside
  np.testing.assert_allclose(M.energy_pointing_game(maps, mask)[0], 1 / 1.75, rtol=1e-6)
  # undefined cases are nan: no positive relevance, empty mask
  assert np.isnan(M.relevance_mass_accuracy(-jnp.abs(maps), mask)).all()
  assert np.isnan(M.pointing_game(maps, jnp.zeros_like(mask))).all()


def test_mask_iou_hand_computed():
  mask = jnp.asarray([[1, 1, 0, 0], [0, 0, 1, 1]], bool).reshape(2, 2, 2)
  maps = jnp.asarray([[3.0, -1.0, 1.0, 0.0], [2.0, 0.0, 1.0, 1.0]]).reshape(2, 2, 2)
  # at half the maximum: regions {0} and {0, 2, 3} -> 1/2 and 2/3
  np.testing.assert_allclose(M.mask_iou(maps, mask), [0.5, 2 / 3], rtol=1e-6)
  # at 30 %: sample 0's region {0, 2} -> 1/3 (the negative voxel 1 stays out)
  np.testing.assert_allclose(M.mask_iou(maps, mask, threshold=0.3)[0], 1 / 3, rtol=1e-6)
  assert np.isnan(M.mask_iou(-jnp.abs(maps), mask)).all()  # no positive relevance
  assert np.isnan(M.mask_iou(maps, jnp.zeros_like(mask))).all()  # an empty mask


@pytest.mark.parametrize("shape", SHAPES)
def test_pointing_game_peak_outside_and_tolerance(shape):
  mask = box_mask(shape)
  maps = np.zeros(shape, np.float32)
  maps[(slice(None),) + (3,) * (len(shape) - 1)] = 1.0  # peak 2 voxels off the box corner
  maps = jnp.asarray(maps)
  nd = len(shape) - 1
  distance = np.sqrt(nd * 2**2)  # from the box corner (1, ...) to the peak (3, ...)
  np.testing.assert_array_equal(M.pointing_game(maps, mask), 0.0)
  # A Euclidean ball: the cube of half-side 2 would reach the peak, the ball does not.
  np.testing.assert_array_equal(M.pointing_game(maps, mask, tolerance=2), 0.0)
  np.testing.assert_array_equal(M.pointing_game(maps, mask, tolerance=distance - 0.01), 0.0)
  np.testing.assert_array_equal(M.pointing_game(maps, mask, tolerance=distance), 1.0)
  # Physical units: 0.5 per voxel puts the peak sqrt(nd) units away.
  half = (0.5,) * nd
  np.testing.assert_array_equal(M.pointing_game(maps, mask, tolerance=1.0, spacing=half), 0.0)
  np.testing.assert_array_equal(M.pointing_game(maps, mask, tolerance=1.8, spacing=half), 1.0)


def test_shortcut_score_constructed():
  obj = jnp.asarray([[1, 1, 0, 0, 0, 0]] * 3, bool)
  cot = jnp.asarray([[0, 0, 1, 1, 0, 0]] * 3, bool)
  maps = jnp.asarray([[0, 0, 2, -3, 0, 0], [1, -1, 0, 0, 0, 0], [1, 0, -1, 0, 2, 0]], jnp.float32)
  s = M.shortcut_score(maps, obj, cot)
  np.testing.assert_allclose(s.ratio, [1.0, 0.0, 0.5])
  np.testing.assert_allclose(s.on_shortcut, [1.0, 0.0, 0.25])
  np.testing.assert_allclose(s.on_object, [0.0, 1.0, 0.25])
  # positive part only: sample 2 has no positive attribution on the cotton
  s = M.shortcut_score(maps, obj, cot, use_abs=False)
  np.testing.assert_allclose(s.ratio[1:], [0.0, 0.0])
  np.testing.assert_allclose(s.on_shortcut[0], 1.0)


def test_per_class_mean_matches_numpy():
  rng = np.random.default_rng(0)
  values = rng.normal(size=20).astype(np.float32)
  values[3] = np.nan
  labels = rng.integers(0, 4, size=20)
  labels[labels == 2] = 1  # class 2 absent
  got = np.asarray(M.per_class_mean(jnp.asarray(values), jnp.asarray(labels), 5))
  for k in range(5):
    sel = values[(labels == k) & np.isfinite(values)]
    if len(sel):
      np.testing.assert_allclose(got[k], sel.mean(), rtol=1e-5)
    else:
      assert np.isnan(got[k])


# ---------------------------------------------------------------------------------------------
# faithfulness


def linear_model(w):
  """Two-class model: logit 0 = sum(w * x), logit 1 = 0."""

  def f(x):
    s = jnp.sum(w * x, axis=tuple(range(1, x.ndim)))
    return jnp.stack([s, jnp.zeros_like(s)], -1)

  return f


def linear_case(spatial, batch=3, seed=0):
  # numpy data: jax.random would compile a generator per shape (seconds on CPU)
  rng = np.random.default_rng(seed)
  x = rng.uniform(0.5, 1.0, size=(batch, *spatial, 1)).astype(np.float32)
  w = rng.normal(size=(*spatial, 1)).astype(np.float32) + 1.0  # mostly positive: class 0 wins
  w = w / w.sum() * 5.0  # logit 0 in [2.5, 5]: away from saturation
  return linear_model(jnp.asarray(w)), jnp.asarray(x), jnp.asarray((w * x)[..., 0])


@pytest.mark.parametrize("spatial", [(6, 6), (4, 4, 3)])
def test_perfect_map_is_most_faithful(spatial):
  f, x, perfect = linear_case(spatial)
  assert (jnp.argmax(f(x), -1) == 0).all()
  rand = jnp.asarray(np.random.default_rng(1).normal(size=perfect.shape), jnp.float32)
  targets = jnp.zeros(x.shape[0], jnp.int32)
  d = {
    k: M.deletion_curve(f, x, m, targets)[1]
    for k, m in [("p", perfect), ("r", rand), ("i", -perfect)]
  }
  i = {
    k: M.insertion_curve(f, x, m, targets, baseline="zero")[1]
    for k, m in [("p", perfect), ("r", rand), ("i", -perfect)]
  }
  assert (d["p"] < d["r"]).all() and (d["r"] < d["i"]).all()
  assert (i["p"] > i["r"]).all() and (i["r"] > i["i"]).all()


def test_curve_endpoints_and_shapes():
  f, x, perfect = linear_case((5, 4))
  probs = jax.nn.softmax(f(x))[:, 0]
  curve, auc = M.deletion_curve(f, x, perfect, num_steps=7)
  assert curve.shape == (3, 8) and auc.shape == (3,)
  np.testing.assert_allclose(curve[:, 0], probs, rtol=1e-5)
  np.testing.assert_allclose(curve[:, -1], 0.5, rtol=1e-5)  # all zeros -> logits equal
  c = np.asarray(curve)
  np.testing.assert_allclose(auc, (c[:, 1:] + c[:, :-1]).sum(1) / 2 / 7, rtol=1e-5)
  curve, _ = M.insertion_curve(f, x, perfect, baseline="mean", score="logit", num_steps=7)
  np.testing.assert_allclose(curve[:, -1], f(x)[:, 0], rtol=1e-5)


def test_chunking_does_not_change_the_curve():
  # Chunking is the same for every baseline; ROAD is the one whose steps do the most work.
  f, x, perfect = linear_case((4, 3, 3), batch=2)
  # an 'rbg' key: its generator compiles in a fraction of threefry's time on CPU
  kw = dict(num_steps=10, baseline="road", road_iters=5, key=jax.random.key(0, impl="rbg"))
  full, auc = M.deletion_curve(f, x, perfect, **kw)
  chunked, chunked_auc = M.deletion_curve(f, x, perfect, batch_size=4, **kw)  # 4 + 4 + 3 padded
  np.testing.assert_allclose(chunked, full, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(chunked_auc, auc, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(full[:, 0], jax.nn.softmax(f(x))[:, 0], rtol=1e-5)  # nothing gone


def test_least_relevant_first_keeps_the_score():
  f, x, perfect = linear_case((6, 6))
  _, morf = M.deletion_curve(f, x, perfect, baseline="mean", order="most")
  _, lerf = M.deletion_curve(f, x, perfect, baseline="mean", order="least")
  assert (lerf > morf).all()


def test_ties_are_deterministic_and_not_by_position():
  maps = jnp.zeros((2, 16, 16))
  ranks = np.asarray(M.voxel_ranks(maps))
  np.testing.assert_array_equal(ranks, M.voxel_ranks(maps))  # the same order every call
  for b in range(2):
    np.testing.assert_array_equal(np.sort(ranks[b].ravel()), np.arange(256))
    # The first half removed is not the first 8 rows (flat order): about half of it is there.
    assert 0.3 < (ranks[b, :8] < 128).mean() < 0.7
  assert not np.array_equal(ranks[0], ranks[1])  # one permutation per sample
  assert not np.array_equal(ranks, M.voxel_ranks(maps, key=jax.random.key(1)))
  # Ties only reorder among themselves.
  maps = jnp.asarray([[3.0, 0.0, 1.0, 0.0, 0.0, 2.0]])
  np.testing.assert_array_equal(np.asarray(M.voxel_ranks(maps))[0, [0, 5, 2]], [0, 1, 2])


def test_tied_maps_are_scored_without_position_bias():
  """A constant map (all ties) used to score as if the first voxels came first."""
  mask = box_mask((1, 8, 8))  # the first voxels in flat order
  flat = jnp.zeros((1, 8, 8))
  frac = float(mask.mean())
  np.testing.assert_allclose(M.relevance_rank_accuracy(flat, mask), frac, rtol=1e-6)
  np.testing.assert_array_equal(M.pointing_game(flat, mask), 1.0)  # any tied peak inside
  np.testing.assert_array_equal(M.pointing_game(flat, mask, ties="all"), 0.0)
  # Two tied peaks, one inside: a hit for 'any', a miss for 'all'.
  two = jnp.zeros((1, 8, 8)).at[0, 0, 0].set(1.0).at[0, 7, 7].set(1.0)
  np.testing.assert_array_equal(M.pointing_game(two, mask), 1.0)
  np.testing.assert_array_equal(M.pointing_game(two, mask, ties="all"), 0.0)
  # Ties at the K-th value share the credit: mask K = 4 voxels, top values 2 (inside), then
  # three tied 1s of which one inside, and 3 places left: 1 + 3 * (1/3) = 2 of 4.
  maps = jnp.zeros((1, 8, 8)).at[0, 0, 0].set(2.0).at[0, 1, 1].set(1.0)
  maps = maps.at[0, 5, 5].set(1.0).at[0, 6, 6].set(1.0)
  np.testing.assert_allclose(M.relevance_rank_accuracy(maps, mask), 0.5, rtol=1e-6)


@pytest.mark.parametrize("spatial", [(8, 7), (6, 6, 7)])
def test_road_fills_holes_in_a_ramp(spatial):
  grids = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in spatial], indexing="ij")
  ramp = sum((i + 1) * 0.3 * g for i, g in enumerate(grids))
  x = jnp.asarray(np.stack([ramp, -ramp], -1)[None])  # [1, *spatial, 2]
  removed = np.zeros((1, *spatial), bool)
  removed[(0,) + (3,) * len(spatial)] = True  # an interior voxel
  removed[(0,) + (1,) * len(spatial)] = True
  removed = jnp.asarray(removed)
  for noise, tol in ((0.0, 1e-5), (0.01, 0.05)):
    y = M.road_impute(x, removed, key=jax.random.key(3), num_iters=50, noise=noise)
    np.testing.assert_allclose(y[removed], x[removed], atol=tol)
    np.testing.assert_array_equal(y[~removed], x[~removed])  # kept voxels are untouched
  # A 3-wide hole converges too (error well below the ramp's step of 0.3).
  removed = np.zeros((1, *spatial), bool)
  removed[(0,) + (slice(2, 5),) * len(spatial)] = True  # interior: 2..4 of >= 6
  y = M.road_impute(x, jnp.asarray(removed), num_iters=50, noise=0.0)
  assert np.abs(np.asarray(y - x)).max() < 0.03


def test_gaussian_filter_keeps_constants_and_mean():
  x = jnp.full((2, 5, 4, 3), 2.5)
  np.testing.assert_allclose(M.gaussian_filter(x, 1.5, (1, 2)), x, rtol=1e-6)
  r = jnp.asarray(np.random.default_rng(0).normal(size=(1, 9, 9)), jnp.float32)
  y = M.gaussian_filter(r, 1.0, (1, 2))
  assert y.std() < r.std()


def test_under_outer_jit():
  f, x, perfect = linear_case((4, 4))
  mask = perfect > jnp.median(perfect)

  @jax.jit
  def run(x, maps, mask):
    return (
      M.relevance_mass_accuracy(maps, mask),
      M.shortcut_score(maps, mask, ~mask).ratio,
      M.deletion_curve(f, x, maps, num_steps=4, baseline="blur", blur_sigma=1.0, batch_size=2)[1],
    )

  rma, ratio, auc = run(x, perfect, mask)
  np.testing.assert_allclose(rma, M.relevance_mass_accuracy(perfect, mask))
  assert ratio.shape == auc.shape == (3,) and np.isfinite(np.asarray(auc)).all()


def test_bad_input_raises():
  maps = jnp.zeros((2, 4, 4))
  with pytest.raises(ValueError, match="masks"):
    M.relevance_mass_accuracy(maps, jnp.zeros((2, 4, 5)))
  f, x, _ = linear_case((4, 4), batch=2)
  with pytest.raises(ValueError, match="baseline"):
    M.deletion_curve(f, x, maps, baseline="nope")
  with pytest.raises(ValueError, match="maps"):
    M.insertion_curve(f, x, jnp.zeros((2, 4, 3)))
