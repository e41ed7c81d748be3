"""Tests for the synthetic BugNIST-like source: determinism, records, cotton shortcut, shapes."""

import pickle

import grain
import numpy as np
import pytest

from bugnist_jax.data import synthetic3d
from bugnist_jax.data.synthetic3d import SyntheticBugSource, generate_example
from bugnist_jax.errors import UserError

SMALL = (32, 16, 16)


def _dataset(shape, n_per_class, strength, seed=0):
  return [generate_example(seed, i, shape, strength) for i in range(12 * n_per_class)]


def _nearest_mean_accuracy(feats: np.ndarray, labels: np.ndarray) -> float:
  """Nearest class mean on standardised features, fitted on every other round of 12 examples."""
  feats = (feats - feats.mean(0)) / (feats.std(0) + 1e-9)
  tr = (np.arange(len(labels)) // 12) % 2 == 0
  te = ~tr
  means = np.stack([feats[tr][labels[tr] == c].mean(0) for c in range(12)])
  pred = np.argmin(((feats[te][:, None] - means[None]) ** 2).sum(-1), axis=1)
  return float((pred == labels[te]).mean())


def _cotton_features(ex) -> list[float]:
  """Averaged over both tube ends: depth reached, log voxel count, mean intensity of the cotton."""
  cot, img = ex["shortcut_mask"].astype(bool), ex["image"][..., 0].astype(float)
  z = cot.shape[0]
  ends = [(cot[: z // 2], img[: z // 2]), (cot[z // 2 :][::-1], img[z // 2 :][::-1])]
  feats = []
  for c, im in ends:
    reach = np.flatnonzero(c.any(axis=(1, 2))).max() + 1
    feats.append([reach, np.log(c.sum()), im[c].mean()])
  return list(np.mean(feats, axis=0))


def _mask_features(ex) -> list[float]:
  """Bug volume and the spread of its voxels along its three principal axes."""
  pts = np.argwhere(ex["object_mask"]).astype(float)
  ev = np.sort(np.linalg.eigvalsh(np.cov(pts.T)))[::-1]
  return [
    np.log(len(pts)),
    *np.sqrt(np.maximum(ev, 0)),
    ex["image"][..., 0][ex["object_mask"] > 0].mean(),
  ]


def test_deterministic_by_seed_and_index():
  a, b = generate_example(3, 5, SMALL), generate_example(3, 5, SMALL)
  for k in ("image", "object_mask", "shortcut_mask", "label"):
    np.testing.assert_array_equal(a[k], b[k])
  assert not np.array_equal(a["image"], generate_example(3, 17, SMALL)["image"])  # same class
  assert not np.array_equal(a["image"], generate_example(4, 5, SMALL)["image"])


@pytest.mark.parametrize("shape", [(16, 8, 8), SMALL, (64, 32, 32)])
def test_record_shapes_and_dtypes(shape):
  ex = generate_example(0, 7, shape)
  assert ex["image"].shape == (*shape, 1) and ex["image"].dtype == np.uint8
  assert ex["object_mask"].shape == shape and ex["object_mask"].dtype == np.uint8
  assert ex["shortcut_mask"].shape == shape and ex["shortcut_mask"].dtype == np.uint8
  assert ex["label"].dtype == np.int32 and int(ex["label"]) == 7
  assert set(np.unique(ex["object_mask"])) <= {0, 1} and set(np.unique(ex["shortcut_mask"])) <= {
    0,
    1,
  }


def test_source_labels_balanced_and_consistent():
  src = SyntheticBugSource(36, shape=SMALL, seed=1)
  labels = src.labels()
  assert labels.dtype == np.int32 and len(labels) == len(src) == 36
  np.testing.assert_array_equal(np.bincount(labels, minlength=12), np.full(12, 3))
  for i in (0, 13, 35, -1):
    assert int(src[i]["label"]) == labels[i]
  with pytest.raises(IndexError):
    src[36]


def test_source_pickles_and_works_with_grain():
  src = SyntheticBugSource(24, shape=SMALL, seed=2, shortcut_strength=0.3)
  clone = pickle.loads(pickle.dumps(src))
  assert repr(clone) == repr(src) and "shortcut_strength=0.3" in repr(src)
  np.testing.assert_array_equal(clone[5]["image"], src[5]["image"])
  batch = grain.MapDataset.source(src).batch(4)[1]
  assert batch["image"].shape == (4, *SMALL, 1)
  np.testing.assert_array_equal(batch["label"], [4, 5, 6, 7])


def test_bad_arguments_raise_user_error():
  with pytest.raises(UserError, match="shortcut_strength"):
    SyntheticBugSource(10, shortcut_strength=1.5)
  with pytest.raises(UserError, match="shape"):
    generate_example(0, 0, (32, 16))
  with pytest.raises(UserError, match="num_examples"):
    SyntheticBugSource(0)


def test_bug_is_bright_and_cotton_at_ends_apart_from_bug():
  for ex in _dataset(SMALL, 2, 0.5) + _dataset((64, 32, 32), 1, 0.5):
    img, mask, cot = (
      ex["image"][..., 0].astype(float),
      ex["object_mask"] > 0,
      ex["shortcut_mask"] > 0,
    )
    z = mask.shape[0]
    assert mask.sum() > 20 and cot.sum() > 0
    assert img[mask].mean() > img[~mask & ~cot].mean() + 40  # tissue well above background
    bug_z = np.flatnonzero(mask.any(axis=(1, 2)))
    cot_lo = np.flatnonzero(cot[: z // 2].any(axis=(1, 2)))
    cot_hi = z // 2 + np.flatnonzero(cot[z // 2 :].any(axis=(1, 2)))
    assert len(cot_lo) and len(cot_hi)  # both tube ends are packed
    assert cot_lo.max() < 0.2 * z and cot_hi.min() >= 0.8 * z - 1  # only near the ends
    assert cot_lo.max() < bug_z.min() - 1 and bug_z.max() < cot_hi.min() - 1  # a gap


def test_cotton_is_a_shortcut_only_when_asked():
  accs = {}
  for strength in (0.0, 1.0):
    data = _dataset(SMALL, 12, strength)
    feats = np.array([_cotton_features(ex) for ex in data])
    accs[strength] = _nearest_mean_accuracy(feats, np.arange(len(data)) % 12)
  assert accs[1.0] > 0.9, accs
  assert accs[0.0] < 0.3, accs


def test_classes_differ_by_bug_shape():
  data = _dataset((64, 32, 32), 8, 0.0)
  feats = np.array([_mask_features(ex) for ex in data])
  acc = _nearest_mean_accuracy(feats, np.arange(len(data)) % 12)
  assert acc > 0.4, acc  # chance is 1/12; a CNN sees far more than these 5 numbers


def test_signatures_are_distinct():
  sig = synthetic3d.COTTON_SIGNATURES
  d = np.linalg.norm(sig[:, None] - sig[None], axis=-1) + np.eye(12) * 9
  assert d.min() > 0.3  # much more than the +-0.07 jitter
