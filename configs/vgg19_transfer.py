"""VGG19 transfer learning (the study's task 2): ImageNet backbone frozen, new 5-class head.

  python -m bugnist_jax.train --config=configs/vgg19_transfer.py \
      --config.model.weights=/path/to/vgg19.pth --workdir=runs/vgg19
  python -m bugnist_jax.evaluate --workdir=runs/vgg19 --splits=train,validation,test
  python -m bugnist_jax.look_inside --workdir=runs/vgg19

Weights: a LOCAL torchvision `vgg19` state_dict (`.pth`, read with weights_only=True, or
`.safetensors`); nothing is downloaded at run time. Make one once where torchvision and the
internet are available:

  python -c "import torch, torchvision; torch.save(torchvision.models.vgg19(
      weights='IMAGENET1K_V1').state_dict(), 'vgg19.pth')"

(`--config.model.batch_norm=True` with a `vgg19_bn` file.) With `model.weights=''` (the default,
so the embedded-data demo runs anywhere) the backbone is RANDOM and a warning says so: the run
exercises the machinery but is not transfer learning (expect accuracy near chance).
VGG19 at 224x224 costs ~20 GFLOP per image forward: on a CPU use the weights with few epochs,
or a GPU. Frozen stages get no updates, but their gradients are still computed (the loop
differentiates every nnx.Param).
`train.freeze` lists the stage-name prefixes kept fixed (all convs and fc1, fc2: only the
replaced head trains, as in the study); set it to () to fine-tune everything.
Real data: `--config.data.source=imagefolder --config.data.root=/path/101_ObjectCategories`.
`:smoke` is a tiny width-reduced run for tests (32x32 images, 1/8 of the channels).
"""

import ml_collections

from bugnist_jax import config_defaults


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variants = config_defaults.parse_variants(arg, __file__, valid=("smoke",))
  c = config_defaults.base(model="vgg19")
  config_defaults.data_2d(c)  # same data fields as the small CNNs
  c.data.num_examples = 500
  c.model.weights = ""  # path to torchvision's vgg19 .pth / .safetensors; '' = random (demo)
  c.model.batch_norm = False  # True for vgg19_bn weights
  c.model.replace_head = True  # new last Linear for our classes
  c.model.dropout = 0.5
  c.model.width = 1.0  # channel multiplier; real weights need 1.0
  c.model.hidden = 4096
  c.train.freeze = ("conv", "fc")  # every stage but the new head
  c.train.optimizer = "adam"
  c.train.batch_size = 16
  c.train.num_epochs = 5
  c.train.learning_rate = 1e-3
  c.eval.batch_size = 16
  if "smoke" in variants:
    c.data.shape = (32, 32)
    c.data.num_examples = 100
    c.model.width = 0.125
    c.model.hidden = 64
    c.model.dropout = 0.0
    c.train.freeze = ("conv",)  # a random 1/8-width backbone: let fc1, fc2 and the head train
    c.train.batch_size = 10
    c.train.num_epochs = 2
    c.train.log_every_steps = 5
    c.eval.batch_size = 10
    c.train.update(config_defaults.SMOKE_TRAIN)
  return c
