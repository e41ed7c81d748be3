"""The Caltech-101 study's 2D CNNs (architectures 1, 2, 3) on 5 classes; no download by default.

  python -m bugnist_jax.train --config=configs/caltech2d.py:arch2 --workdir=runs/arch2
  python -m bugnist_jax.evaluate --workdir=runs/arch2 --splits=train,validation,test
  python -m bugnist_jax.look_inside --workdir=runs/arch2

`:arch1`, `:arch2` (the default), `:arch3` pick the architecture; `:smoke` is a tiny run for
tests (64x64 images; `:arch3,smoke` combines them). The data default to the embedded synthetic
images (`bugnist_jax.data.synthetic2d`, the same five class names). For the real Caltech-101
subset:

  --config.data.source=imagefolder --config.data.root=/path/to/101_ObjectCategories

(the study used 50 images per class for training and 10 + 10 for validation and test; with
imagefolder all images of the five folders are split 70/15/15 by the seed).
"""

import ml_collections

from bugnist_jax import config_defaults

ARCHS = ("arch1", "arch2", "arch3")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variants = config_defaults.parse_variants(
    arg, __file__, valid=(*ARCHS, "smoke"), exclusive=(ARCHS,)
  )
  c = config_defaults.base(model="cnn2d")
  config_defaults.data_2d(c)
  c.data.num_examples = 1000  # synthetic2d: 200 per class
  c.model.arch = next((int(a[-1]) for a in ARCHS if a in variants), 2)  # the study's tables 1-3
  c.model.dense = 128
  c.train.optimizer = "adam"
  c.train.batch_size = 32
  c.train.num_epochs = 4
  c.train.learning_rate = 1e-3
  c.train.log_every_steps = 10
  c.eval.batch_size = 50
  if "smoke" in variants:
    c.data.shape = (64, 64)  # at 64x64 conv1 gives 16x16, pools 7 and 3
    c.data.num_examples = 150
    c.train.batch_size = 10
    c.train.num_epochs = 4
    c.train.learning_rate = 3e-3
    c.train.log_every_steps = 5
    c.eval.batch_size = 25
    c.train.update(config_defaults.SMOKE_TRAIN)
  return c
