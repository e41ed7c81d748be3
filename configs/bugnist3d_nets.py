"""ResNets, R(2+1)D-18 and DenseNet-121 on BugNIST-like volumes (3D, one channel): the baselines
a 2025 course project compared with the study's 3D CNN (ResNet18 0.934, DenseNet 0.940 test
accuracy at 64x32x32 on the real data).

  python -m bugnist_jax.train --config=configs/bugnist3d_nets.py:resnet18 --workdir=runs/r18
  python -m bugnist_jax.evaluate --workdir=runs/r18 --splits=train,validation,test
  python -m bugnist_jax.explain --workdir=runs/r18

Variants (one of): `:resnet18` (the default), `:resnet34`, `:resnet50`, `:covid` (CovidResNet
in 3D), `:r2plus1d_18` (torchvision's video network: (2+1)D kernels, D is the tube axis),
`:r2plus1d` (ResNet-18 with every 3x3x3 conv factorised, the paper's M per conv),
`:densenet121`, `:covid_densenet`; `:cpu` makes any of them fit in minutes on 2 CPU cores (a
quarter of every width, 1200 volumes, 6 epochs: the README's model table, `:resnet18,cpu`);
`:smoke` is a tiny run for tests (`:densenet121,smoke`).
Every kernel is cubic (torchvision's 2D layout with one more axis). The data default to the
embedded synthetic volumes at the real data's tiny-release size, 64x32x32 (a DenseNet needs 32
voxels along every axis); the real data:

  --config.data.source=bugnist3d --config.data.root=/path/to/BugNIST_DATA

ImageNet weights into the 3D network, I3D-style: `--config.model.weights=resnet18.pth
--config.model.inflate=True` (a LOCAL torchvision file; models/torch_weights.py).
"""

import ml_collections

from bugnist_jax import config_defaults

# variant: (registered model, model.variant, model.conv)
NETS = {
  "resnet18": ("resnet", "resnet18", "full"),
  "resnet34": ("resnet", "resnet34", "full"),
  "resnet50": ("resnet", "resnet50", "full"),
  "covid": ("resnet", "covid", "full"),
  "r2plus1d_18": ("resnet", "r2plus1d_18", "r2plus1d"),  # the variant is (2+1)D throughout
  "r2plus1d": ("resnet", "resnet18", "r2plus1d"),
  "densenet121": ("densenet", "densenet121", "full"),
  "covid_densenet": ("densenet", "covid", "full"),
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variants = config_defaults.parse_variants(
    arg, __file__, valid=(*NETS, "cpu", "smoke"), exclusive=(tuple(NETS), ("cpu", "smoke"))
  )
  name, variant, conv = NETS[next((n for n in NETS if n in variants), "resnet18")]
  c = config_defaults.base(model=name)
  c.data.source = "synthetic3d"
  c.data.shape = (64, 32, 32)  # the tiny release's; DenseNet halves every axis five times
  c.data.num_examples = 2400
  c.data.shortcut_strength = 0.8
  c.model.variant = variant
  c.model.conv = conv
  c.train.optimizer = "adam"  # the course project's: Adam, lr 5e-4
  c.train.batch_size = 16
  c.train.num_epochs = 10
  c.train.learning_rate = 5e-4
  if "cpu" in variants:  # torchvision's widths at 64x32x32 are hours per run on 2 cores
    c.model.width = 1 / 4
    c.data.num_examples = 1200
    c.train.num_epochs = 6
  if "smoke" in variants:
    c.data.shape = (32, 32, 32)
    c.data.num_examples = 40
    c.model.width = 1 / 16
    c.model.blocks = (1, 1, 1, 1)
    c.train.batch_size = 8
    c.train.num_epochs = 1
    c.train.log_every_steps = 2
    c.train.update(config_defaults.SMOKE_TRAIN)
    c.eval.batch_size = 8
  return c
