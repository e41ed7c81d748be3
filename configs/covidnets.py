"""The DeepVisionVR networks (Linse et al. 2022) on the 2D Caltech-101 task: CovidResNet
(BasicBlock [2, 1, 1, 1]) or CovidDenseNet (blocks [6, 10, 2, 1], transitions 128/256/512).

  python -m bugnist_jax.train --config=configs/covidnets.py:resnet --workdir=runs/covidresnet
  python -m bugnist_jax.evaluate --workdir=runs/covidresnet --splits=train,validation,test
  python -m bugnist_jax.look_inside --workdir=runs/covidresnet

`:resnet` (the default) or `:densenet` picks the network; `:smoke` is a tiny run for tests
(32x32 images, 1/16 of the widths; `:densenet,smoke` combines them). The images are resized
(aspect not kept) to 150x175, as the DeepVisionVR server fed Caltech-101. The data default to the
embedded synthetic images (five classes); for the real Caltech-101 (all 101 classes):

  --config.data.source=imagefolder --config.data.root=/path/to/101_ObjectCategories

Weights: `--config.model.weights=file.pth` loads a LOCAL state_dict in torchvision's key layout
(`model.replace_head=False` keeps its Linear too; `models/resnet.py`, `densenet.py`); by default
both nets train from scratch.
"""

import ml_collections

from bugnist_jax import config_defaults

NETS = ("resnet", "densenet")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variants = config_defaults.parse_variants(
    arg, __file__, valid=(*NETS, "smoke"), exclusive=(NETS,)
  )
  net = next((n for n in NETS if n in variants), "resnet")
  c = config_defaults.base(model=net)
  config_defaults.data_2d(c, shape=(150, 175))
  c.data.num_examples = 1000  # synthetic2d: 200 per class
  c.model.variant = "covid"
  c.train.optimizer = "adam"
  c.train.batch_size = 32
  c.train.num_epochs = 10
  c.train.learning_rate = 1e-3
  c.train.log_every_steps = 10
  c.eval.batch_size = 50
  if "smoke" in variants:
    c.data.shape = (32, 32)
    c.data.num_examples = 60
    c.model.width = 1 / 16
    c.model.blocks = (1, 1, 1, 1)
    c.train.batch_size = 10
    c.train.num_epochs = 1
    c.train.log_every_steps = 2
    c.train.update(config_defaults.SMOKE_TRAIN)
    c.eval.batch_size = 20
  return c
