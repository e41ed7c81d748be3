"""Every entry of `datasets.SOURCES`: records that keep the record contract, or, for a source
read from disk, one line naming `config.data.root` when it is not set."""

import numpy as np
import pytest

from bugnist_jax import config_defaults, validation
from bugnist_jax.data import datasets
from bugnist_jax.errors import UserError

# Sources generated or shipped with a package: built tiny and read. Every other one reads files.
GENERATED = {"synthetic3d": (16, 8, 8), "synthetic2d": (16, 16), "digits": (16, 16)}
RECORD_DTYPES = {"image": np.uint8, "label": np.int32, "object_mask": np.uint8}


def _cfg(name: str):
  c = config_defaults.base().data
  c.source = name
  c.num_examples = 12
  c.shape = GENERATED.get(name, (32, 32) if name not in validation.SOURCES_3D else (16, 8, 8))
  return c


@pytest.mark.parametrize("name", sorted(datasets.SOURCES))
def test_every_source_keeps_the_record_contract_or_names_its_root(name):
  cfg = _cfg(name)
  if name not in GENERATED:
    with pytest.raises(UserError, match=r"^config\.data\.root: "):
      datasets.full_data(cfg)
    return
  full = datasets.full_data(cfg)
  assert len(full.items) == len(full.source) > 0
  assert tuple(full.image_shape[:-1]) == tuple(cfg.shape)
  # validation's 3D/2D split (data.shape's length) knows the source
  assert len(cfg.shape) == (3 if name in validation.SOURCES_3D else 2)
  labels = np.asarray(full.source.labels())
  assert labels.shape == (len(full.source),)
  assert labels.min() >= 0 and labels.max() < len(full.class_names)
  record = full.source[0]
  assert record["image"].shape == tuple(full.image_shape)
  assert int(record["label"]) == labels[0]
  for key, dtype in RECORD_DTYPES.items():
    if key in record:
      assert np.asarray(record[key]).dtype == dtype, key
  for key in ("object_mask", "shortcut_mask"):
    if key in record:
      assert record[key].shape == tuple(cfg.shape), key
