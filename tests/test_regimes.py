"""Training regimes (`config.data.regime`): noisy copies fixed by seed, shuffled labels, the old
`shuffle_labels` spelling, and the record cache."""

import json

import numpy as np
import pytest

from bugnist_jax.config_defaults import base
from bugnist_jax.data import datasets
from bugnist_jax.data.sources import CachedSource, NoisyCopies, ShuffledLabels
from bugnist_jax.errors import UserError
from bugnist_jax.runs import load_config


class _Source(list):
  """Records with uint8 images [8, 8, 1] of one grey level each, labels i % 3."""

  reads = 0

  def __getitem__(self, i):
    type(self).reads += 1
    return super().__getitem__(i)

  def labels(self):
    return np.array([int(r["label"]) for r in self], np.int32)


def _source(n: int = 30) -> _Source:
  return _Source(
    {"image": np.full((8, 8, 1), 60 + i, np.uint8), "label": np.int32(i % 3)} for i in range(n)
  )


def test_noisy_copies_keep_originals_and_fix_noise_and_labels_by_seed():
  src = _source()
  a, b = NoisyCopies(src, 9, 0.1, seed=4, num_classes=3), NoisyCopies(src, 9, 0.1, 4, 3)
  assert len(a) == 300 and a.is_copy().sum() == 270
  for i in range(30):  # the originals, untouched, with their labels
    assert np.array_equal(a[i]["image"], src[i]["image"]) and a[i]["label"] == src[i]["label"]
  order = np.random.default_rng(0).permutation(np.arange(30, 300))  # any order, any instance
  for i in order[:20]:
    assert np.array_equal(a[int(i)]["image"], b[int(i)]["image"])
    assert a[int(i)]["label"] == b[int(i)]["label"] == a.labels()[i]
  copy = a[35]
  assert copy["image"].dtype == np.uint8
  delta = copy["image"].astype(float) - src[5]["image"]
  assert 0.08 * 255 < delta.std() < 0.12 * 255  # noise_std is a fraction of 0..255
  assert not np.array_equal(a[35]["image"], a[65]["image"])  # two copies of item 5 differ
  random = a.labels()[30:]
  assert set(random.tolist()) == {0, 1, 2} and np.mean(random == np.tile(src.labels(), 9)) < 0.5
  other = NoisyCopies(src, 9, 0.1, seed=5, num_classes=3)
  assert not np.array_equal(other.labels(), a.labels())


def test_regimes_and_the_old_shuffle_labels_spelling():
  cfg, src = base().data, _source()
  assert datasets.training_source(cfg, src) is src
  cfg.regime = "noisy_copies"
  cfg.noise_copies = 2
  noisy = datasets.training_source(cfg, src, num_classes=3)
  assert isinstance(noisy, NoisyCopies) and len(noisy) == 90
  cfg.shuffle_labels = True
  with pytest.raises(UserError, match="config.data.shuffle_labels"):
    datasets.training_source(cfg, src)
  cfg.regime = "standard"
  assert isinstance(datasets.training_source(cfg, src), ShuffledLabels)
  cfg.regime, cfg.shuffle_labels = "memorise", False
  with pytest.raises(UserError, match="config.data.regime: unknown 'memorise'"):
    datasets.training_source(cfg, src)
  cfg.regime, cfg.noise_std = "noisy_copies", 0.0
  with pytest.raises(UserError, match="noise_std"):
    datasets.training_source(cfg, src)


def test_an_old_config_with_shuffle_labels_reads_as_the_shuffled_labels_regime(tmp_path):
  old = base().to_dict()
  del old["data"]["regime"], old["data"]["noise_copies"], old["data"]["noise_std"]
  old["data"]["shuffle_labels"] = True
  (tmp_path / "config.json").write_text(json.dumps(old))
  config = load_config(tmp_path)
  assert config.data.regime == "standard" and datasets.regime(config.data) == "shuffled_labels"


def test_cached_source_reads_each_item_once():
  src = _source(5)
  cached = CachedSource(src)
  _Source.reads = 0
  first = [cached[i]["image"] for i in range(5)]
  again = [cached[i]["image"] for i in range(5)]
  assert _Source.reads == 5 and all(a is b for a, b in zip(first, again, strict=True))
  assert np.array_equal(cached.labels(), src.labels())
