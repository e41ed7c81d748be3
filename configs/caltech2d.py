"""The Caltech-101 study's 2D CNNs (architectures 1, 2, 3) on 5 classes; no download by default.

  python -m bugnist_jax.train --config=configs/caltech2d.py:arch2 --workdir=runs/arch2
  python -m bugnist_jax.evaluate --workdir=runs/arch2 --splits=train,validation,test
  python -m bugnist_jax.look_inside --workdir=runs/arch2

`:arch1`, `:arch2` (the default), `:arch3` pick the architecture; `:smoke` is a tiny arch-2 run
for tests (64x64 images). The data default to the embedded synthetic images
(`bugnist_jax.data.synthetic2d`, the same five class names). For the real Caltech-101 subset:

  --config.data.source=imagefolder --config.data.root=/path/to/101_ObjectCategories

(the study used 50 images per class for training and 10 + 10 for validation and test; with
imagefolder all images of the five folders are split 70/15/15 by the seed).
"""

import ml_collections

from bugnist_jax import config_defaults

STUDY_CLASSES = ("bonsai", "hawksbill", "menorah", "scorpion", "sunflower")


def data_2d(c: ml_collections.ConfigDict, shape=(224, 224)) -> None:
  """The 2D data fields shared by the 2D configs: synthetic2d, study classes, flips only."""
  c.data.source = "synthetic2d"  # or 'imagefolder' with data.root
  c.data.classes = STUDY_CLASSES  # imagefolder: the Caltech-101 folders, in label order
  c.data.shape = shape  # (H, W) every image is resized to
  # Natural images: left-right flips only (upside-down or rotated objects are not in the data).
  del c.data["augment"]
  c.data.augment = "hflip"


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = config_defaults.base()
  data_2d(c)
  c.data.num_examples = 1000  # synthetic2d: 200 per class
  arch = {"arch1": 1, "arch2": 2, "arch3": 3, "smoke": 2, None: 2, "": 2}
  if arg not in arch:
    raise ValueError(f"config argument: unknown {arg!r}; valid: arch1, arch2, arch3, smoke")
  c.model = ml_collections.ConfigDict()
  c.model.name = "cnn2d"  # bugnist_jax.models.cnn2d.CaltechCNN
  c.model.arch = arch[arg]  # 1, 2 or 3: the study's tables 1-3
  c.model.dense = 128
  c.model.dropout = 0.0
  c.train.optimizer = "adam"
  c.train.batch_size = 32
  c.train.num_epochs = 4  # arch 2: 91% validation accuracy, ~2 min on 2 CPU cores
  c.train.learning_rate = 1e-3
  c.train.log_every_steps = 10
  c.eval.batch_size = 50
  if arg == "smoke":
    c.data.shape = (64, 64)  # at 64x64 conv1 gives 16x16, pools 7 and 3
    c.data.num_examples = 150
    c.train.batch_size = 10
    c.train.num_epochs = 4
    c.train.learning_rate = 3e-3
    c.train.log_every_steps = 5
    c.eval.batch_size = 25
  return c
