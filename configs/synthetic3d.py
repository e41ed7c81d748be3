"""BugCNN3D on the embedded synthetic BugNIST-like volumes (the default; no download).

  python -m bugnist_jax.train --config=configs/synthetic3d.py --workdir=runs/synthetic3d

`--config=configs/synthetic3d.py:smoke` is a tiny run for tests.
"""

from bugnist_jax import config_defaults


def get_config(arg: str | None = None):
  variants = config_defaults.parse_variants(arg, __file__, valid=("smoke",))
  c = config_defaults.base(model="bugcnn3d")
  c.data.source = "synthetic3d"
  # 48x24x24 keeps BugNIST's 2:1:1 aspect at 0.4x the voxels of the "tiny" release
  # (64x32x32): the whole demo (train, evaluate, explain) fits in minutes on 2 CPU cores.
  c.data.shape = (48, 24, 24)
  c.data.num_examples = 2400
  # Like the real data, the cotton tells the class for most volumes: the demo's saliency maps
  # show where the model looks (bugnist_jax.study.shortcut measures it).
  c.data.shortcut_strength = 0.8
  c.model.channels = (8, 16, 32, 64)
  c.model.dense = 128
  c.train.batch_size = 16
  c.train.num_epochs = 6
  c.train.learning_rate = 3e-3
  if "smoke" in variants:
    c.data.shape = (32, 16, 16)
    c.data.num_examples = 96
    c.model.channels = (4, 8, 8, 8)
    c.model.dense = 16
    c.train.batch_size = 8
    c.train.num_epochs = 2
    c.train.log_every_steps = 2
    c.eval.batch_size = 8
    c.train.update(config_defaults.SMOKE_TRAIN)
  return c
