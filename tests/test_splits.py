"""Tests for stratified splits and the split CSV files."""

import numpy as np
import pytest

from bugnist_jax.data.splits import read_split_csv, stratified_split, write_split_csv
from bugnist_jax.errors import UserError


def _labels() -> np.ndarray:
  """12 classes of 20 to 31 members, shuffled, plus a class 12 with only 3 members."""
  rng = np.random.default_rng(0)
  labels = np.concatenate([np.full(20 + c, c) for c in range(12)] + [np.full(3, 12)])
  return rng.permutation(labels)


def test_split_is_a_stratified_partition():
  labels = _labels()
  split = stratified_split(labels, (0.7, 0.15, 0.15), seed=4)
  allidx = np.concatenate(list(split.values()))
  assert sorted(split) == ["test", "train", "validation"]
  np.testing.assert_array_equal(np.sort(allidx), np.arange(len(labels)))  # disjoint cover
  for name, frac in (("train", 0.7), ("validation", 0.15), ("test", 0.15)):
    counts = np.bincount(labels[split[name]], minlength=13)
    assert counts.min() >= 1, name  # every class, even the 3-member one, in every split
    totals = np.bincount(labels)
    np.testing.assert_allclose(counts[:12] / totals[:12], frac, atol=0.05)


def test_split_is_deterministic_by_seed():
  labels = _labels()
  a, b = stratified_split(labels, seed=1), stratified_split(labels, seed=1)
  c = stratified_split(labels, seed=2)
  for k in a:
    np.testing.assert_array_equal(a[k], b[k])
  assert not np.array_equal(a["test"], c["test"])


def test_bad_fractions():
  with pytest.raises(UserError, match="fractions"):
    stratified_split(np.zeros(10), (0.5, 0.5, 0.5))
  with pytest.raises(UserError, match="fractions"):
    stratified_split(np.zeros(10), (0.8, 0.2))


def test_csv_round_trip(tmp_path):
  labels = _labels()
  items = [f"train/X/f_{i}.tif" for i in range(len(labels))]
  split = stratified_split(labels, seed=0)
  path = tmp_path / "sub" / "split.csv"
  write_split_csv(path, items, labels, split)
  assert path.read_text().splitlines()[0] == "item,label,split"
  items2, labels2, split2 = read_split_csv(path)
  assert items2 == items
  np.testing.assert_array_equal(labels2, labels)
  for k in split:
    np.testing.assert_array_equal(split2[k], split[k])


def test_write_rejects_incomplete_split(tmp_path):
  with pytest.raises(ValueError, match="no split"):
    write_split_csv(tmp_path / "s.csv", ["a", "b"], [0, 1], {"train": np.array([0])})


@pytest.mark.parametrize(
  "text, match",
  [
    ("item,label\na,0\n", "missing column.*split"),
    ("item,label,split\na,0,train\nb,1,holdout\n", "line 3: unknown split 'holdout'"),
    ("item,label,split\na,0,train\nb,1,test\na,2,test\n", "line 4: duplicate item 'a'"),
    ("item,label,split\na,cat,train\n", "line 2: label 'cat' is not an integer"),
  ],
)
def test_bad_csv(tmp_path, text, match):
  path = tmp_path / "split.csv"
  path.write_text(text)
  with pytest.raises(UserError, match=match) as e:
    read_split_csv(path)
  assert str(path) in str(e.value)


def test_missing_csv(tmp_path):
  with pytest.raises(UserError, match="does not exist"):
    read_split_csv(tmp_path / "none.csv")
