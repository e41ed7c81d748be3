"""The light study (`bugnist_jax.study.light`): LeNet-5 variants on real handwritten digits under
brightness and contrast changes, BugCNN3D with and without the precortical front-end on the
synthetic volumes, Kang et al.'s drift toward the label marginal, Chen et al.'s smoothness.

  python -m bugnist_jax.study.light --config=configs/light_study.py --workdir=runs/light_study

The wall time is in results.json (`wall_s`) and report.html; `:smoke` is a tiny run for
tests. The top-level fields are the 2D training config every 2D model starts from
(scikit-learn's 8x8 digits, upsampled to 32x32: real handwriting, but not MNIST);
`config.volumes` is the 3D one; `config.study` names the models and the measurement grids.
With MNIST on disk:

  --config.data.source=mnist --config.data.root=/path/to/MNIST

(the official test set is then the test split; `fashion_mnist` and `svhn` work the same, SVHN
with `--config.data.shape` (32, 32) and 3 channels). Model names: `[retina_|dog_]<model>[_bn|_in]
[_aug][_pgd]`, where <model> is `lenet` (2D) or `bugcnn3d` (3D), `retina` the authors' learned
front-end, `dog` the fixed DoG + gain-control one, `bn`/`in` LeNet's batch/instance norm, `aug`
the light augmentation and `pgd` PGD adversarial training (`config.study.pgd`).
"""

import ml_collections
import numpy as np

from bugnist_jax import config_defaults


def _grid(lo: float, hi: float, step: float) -> tuple[float, ...]:
  return tuple(round(float(v), 6) for v in np.arange(lo, hi + step / 2, step))


def get_config(arg: str | None = None):
  variants = config_defaults.parse_variants(arg, __file__, valid=("smoke",))
  c = config_defaults.base(model="lenet5")
  c.data.source = "digits"  # or mnist / fashion_mnist / svhn with data.root
  c.data.shape = (32, 32)
  c.data.normalization = "unit"  # inputs in [0, 1], as the authors' (ToTensor only)
  c.data.augment = "none"  # digits are not flipped
  c.data.split_fractions = (0.7, 0.1, 0.2)  # 359 test digits
  c.train.optimizer = "adam"  # the authors': Adam, lr 1e-3, batch 128, 25 epochs
  c.train.learning_rate = 1e-3
  c.train.batch_size = 32  # 1258 training digits: 39 steps per epoch
  c.train.num_epochs = 20
  c.train.warmup_epochs = 0.0
  c.train.log_every_steps = 20
  c.train.checkpoint_every_epochs = 5
  c.train.keep_checkpoints = 1
  c.eval.batch_size = 60

  v = c.volumes = config_defaults.base(model="bugcnn3d")  # the 3D analogue
  v.data.source = "synthetic3d"
  v.data.shape = (32, 16, 16)
  v.data.num_examples = 720
  v.data.shortcut_strength = 0.0  # the cotton says nothing: the class is in the bug's shape
  v.data.normalization = "unit"
  v.model.channels = (8, 16, 32, 64)
  v.model.dense = 64
  v.model.frontend_kernel = 5  # 5x5x5: a 7^3 kernel is a third of a 16-voxel-wide volume
  v.model.frontend_surround_sigma = 2.0
  v.model.frontend_gain_sigma = 2.0
  v.train.batch_size = 16
  v.train.num_epochs = 6
  v.train.learning_rate = 2e-3
  v.train.log_every_steps = 20
  v.train.checkpoint_every_epochs = 3
  v.train.keep_checkpoints = 1
  v.eval.batch_size = 36

  s = c.study = ml_collections.ConfigDict()
  s.models = (
    "lenet",
    "lenet_bn",
    "lenet_in",
    "retina_lenet",
    "dog_lenet",
    "lenet_aug",
    "lenet_bn_aug",
    "lenet_in_aug",
    "retina_lenet_aug",
    "dog_lenet_aug",
    "lenet_pgd",
  )
  s.volume_models = ("bugcnn3d", "retina_bugcnn3d", "dog_bugcnn3d")
  s.pgd = ml_collections.ConfigDict()  # train.adversarial of the *_pgd models
  s.pgd.norm = "l2"
  s.pgd.epsilon = 1.0  # L2 over 32x32 intensities in [0, 1]
  s.pgd.steps = 7
  s.mu_grid = _grid(-2.0, 2.0, 0.2)  # the authors' short sweeps
  s.sigma_grid = _grid(0.1, 3.9, 0.2)
  s.table_mu = (-1.0, 0.0, 0.4, 1.0, 2.0)  # the columns of the authors' table
  s.table_sigma = (0.1, 2.1, 3.9)
  s.kl_noise = (0.0, 0.1, 0.2, 0.4, 0.8, 1.6)  # Gaussian noise std (intensity units)
  s.kl_blur = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)  # Gaussian blur std (pixels / voxels)
  s.kl_brightness = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)  # mu of x -> x - mu
  s.tv_noise = 0.1  # noise std of Chen et al.'s noisy inputs
  s.batch_size = 120  # test images per forward pass
  s.seed = 0
  if "smoke" in variants:
    c.data.num_examples = 200
    c.train.num_epochs = 1
    c.train.batch_size = 20
    c.train.log_every_steps = 5
    c.train.update(config_defaults.SMOKE_TRAIN)
    c.eval.batch_size = 20
    v.data.shape = (16, 16, 16)
    v.data.num_examples = 48
    v.model.channels = (2, 4, 4, 4)
    v.model.dense = 8
    v.model.conv_impl = "xla"  # at 16^3 it compiles in half the time of 'planes'
    v.train.num_epochs = 1
    v.train.batch_size = 8
    v.train.log_every_steps = 5
    v.train.update(config_defaults.SMOKE_TRAIN)
    v.eval.batch_size = 8
    # Every option in two runs (training is most of the time): the learned front-end, instance
    # norm, light augmentation and PGD in 2D, the fixed front-end in 3D (batch norm: the
    # contract test; the rest: unit tests). A learned 3D front-end is slow under the tests'
    # unoptimised XLA.
    s.models = ("retina_lenet_in_aug_pgd",)
    s.volume_models = ("dog_bugcnn3d",)
    s.pgd.steps = 2
    s.mu_grid = (-1.0, 0.0, 1.0)
    s.sigma_grid = (0.1, 2.1, 3.9)
    s.table_mu = (-1.0, 1.0)
    s.table_sigma = (0.1, 3.9)
    s.kl_noise = (0.0, 0.4)
    s.kl_blur = (0.0, 1.0)
    s.kl_brightness = (0.0, 1.0)
    s.batch_size = 40
  return c
