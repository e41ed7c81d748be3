"""BugCNN3D on the embedded synthetic BugNIST-like volumes (the default; no download).

  python -m bugnist_jax.train --config=configs/synthetic3d.py --workdir=runs/synthetic3d

`--config=configs/synthetic3d.py:smoke` is a tiny run for tests.
"""

from bugnist_jax import config_defaults


def get_config(arg: str | None = None):
  c = config_defaults.base()
  c.data.source = "synthetic3d"
  c.data.shape = (64, 32, 32)  # the size of BugNIST's "tiny" release
  c.data.num_examples = 2400
  c.data.shortcut_strength = 0.5
  c.model.channels = (8, 16, 32, 64)
  c.model.dense = 128
  c.model.conv_impl = "matmul"  # several times faster than XLA's 3D conv on CPU
  c.train.batch_size = 16
  c.train.num_epochs = 6
  c.train.learning_rate = 2e-3
  if arg == "smoke":
    c.data.shape = (32, 16, 16)
    c.data.num_examples = 96
    c.model.channels = (4, 8, 8, 8)
    c.model.dense = 16
    c.train.batch_size = 8
    c.train.num_epochs = 2
    c.train.log_every_steps = 2
    c.eval.batch_size = 8
  return c
