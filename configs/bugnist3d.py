"""BugCNN3D on the real BugNIST files (Kaggle layout BugNIST_DATA/train/<CODE>/*.tif).

  python -m bugnist_jax.train --config=configs/bugnist3d.py --workdir=runs/bugnist3d \
      --config.data.root=/path/to/BugNIST_DATA

For the tiny release (64x32x32) add `--config.data.shape=64,32,32`; to train without the
cotton, `--config.data.remove_packing`.
"""

from bugnist_jax import config_defaults


def get_config(arg: str | None = None):
  config_defaults.parse_variants(arg, __file__, valid=())
  c = config_defaults.base(model="bugcnn3d")
  c.data.source = "bugnist3d"
  c.data.shape = (128, 64, 64)  # the Kaggle files
  c.data.num_workers = 4  # reading 9154 TIFFs: worth worker processes
  c.model.channels = (16, 32, 64, 128)
  c.model.dense = 256
  c.model.dropout = 0.3
  c.train.batch_size = 16
  c.train.num_epochs = 30
  c.train.learning_rate = 5e-4
  c.train.optimizer = "adam"
  return c
