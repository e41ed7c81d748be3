"""The embedded synthetic 2D source: determinism, records, masks and boxes, flips."""

import pickle

import numpy as np
import pytest

from bugnist_jax.data import pipeline
from bugnist_jax.data.synthetic2d import CLASS_NAMES, Synthetic2DSource, generate_example
from bugnist_jax.errors import UserError


def test_records_are_deterministic_and_well_formed():
  src = Synthetic2DSource(12, (48, 64), seed=3)
  assert len(src) == 12 and len(CLASS_NAMES) == 5
  np.testing.assert_array_equal(src.labels(), np.arange(12) % 5)
  for i in (0, 7, 11):
    a, b = src[i], pickle.loads(pickle.dumps(src))[i]
    for k in ("image", "label", "object_mask", "object_box"):
      np.testing.assert_array_equal(a[k], b[k])
    assert a["image"].shape == (48, 64, 3) and a["image"].dtype == np.uint8
    assert a["object_mask"].shape == (48, 64) and a["object_mask"].dtype == np.uint8
    assert a["object_box"].dtype == np.int32 and int(a["label"]) == i % 5
    ys, xs = np.nonzero(a["object_mask"])
    assert a["object_mask"].sum() > 30  # the object is visible
    np.testing.assert_array_equal(a["object_box"], [ys.min(), xs.min(), ys.max() + 1, xs.max() + 1])
  assert not np.array_equal(src[0]["image"], Synthetic2DSource(12, (48, 64), seed=4)[0]["image"])
  assert not np.array_equal(src[0]["image"], src[5]["image"])  # same class, other draw


def test_classes_differ_in_shape_more_than_within():
  """Mask overlap (IoU of centred masks) is higher within a class than across classes."""
  masks = {
    c: [generate_example(0, c + 5 * k, (64, 64))["object_mask"] for k in range(6)] for c in range(5)
  }

  def centred(m):
    ys, xs = np.nonzero(m)
    return np.roll(m, (32 - int(ys.mean()), 32 - int(xs.mean())), axis=(0, 1)).astype(bool)

  def iou(a, b):
    a, b = centred(a), centred(b)
    return (a & b).sum() / (a | b).sum()

  within = np.mean([iou(m[0], x) for m in masks.values() for x in m[1:]])
  across = np.mean(
    [
      iou(masks[c][0], masks[d][k])
      for c in range(5)
      for d in range(5)
      if c != d
      for k in range(1, 6)
    ]
  )
  assert within > across + 0.05


def test_bad_arguments():
  with pytest.raises(UserError, match="num_examples"):
    Synthetic2DSource(0)
  with pytest.raises(UserError, match="shape"):
    Synthetic2DSource(4, (8, 8))
  with pytest.raises(IndexError):
    Synthetic2DSource(4, (32, 32))[4]


def test_horizontal_flip_moves_mask_and_box():
  rec = generate_example(0, 2, (40, 56))
  flip = pipeline.HorizontalFlip()
  rng = np.random.default_rng(0)
  flipped = [flip.random_map(rec, rng) for _ in range(8)]
  changed = [f for f in flipped if not np.array_equal(f["image"], rec["image"])]
  assert 0 < len(changed) < 8  # about half the time
  f = changed[0]
  np.testing.assert_array_equal(f["image"], rec["image"][:, ::-1])
  np.testing.assert_array_equal(f["object_mask"], rec["object_mask"][:, ::-1])
  ys, xs = np.nonzero(f["object_mask"])
  np.testing.assert_array_equal(f["object_box"], [ys.min(), xs.min(), ys.max() + 1, xs.max() + 1])
