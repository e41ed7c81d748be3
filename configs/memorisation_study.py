"""The memorisation study of seed 004 (DeepVisionVR): standard, shuffled labels, noisy copies.

  python -m bugnist_jax.study.memorisation --workdir=runs/memorisation \
      --config=configs/memorisation_study.py

The default (the full study): small images and sets, few epochs; 42.6 min on the project's
2-core CPU machine while other jobs shared it (2026-12-01). At this budget the noisy-copies
models fit only part of their random labels (35% in 2D, 13% in 3D: README). Variants:
  paper   the paper's scale for a GPU (its epochs 150-1000 and learning rates; 150x175 images;
          a larger Caltech-like set);
  smoke   a tiny run for CI (tests/test_memorisation.py runs `smoke,2d`);
  2d, 3d  only the 2D (cnn2d) or only the 3D (bugcnn3d) family;
  covid   the seed's models, DeepVisionVR's CovidResNet and CovidDenseNet (`model.name=resnet`
          / `densenet`, `variant=covid`) on the 2D data, in place of both families.

Families (`config.memorisation.families`): each is a config.model (name and fields: the model
is a config field, any registered model), data and train fields over
`config_defaults.base(model=name)`, epochs per regime and the stage whose channels are
visualised ('' = the model's cam_layer). Every family and regime is checked before anything
trains: a field the model, data or train section lacks is one line naming it.
"""

import ml_collections

from bugnist_jax import config_defaults

CLASSES_2D = ("bonsai", "hawksbill", "menorah", "scorpion", "sunflower")


def family(model: dict, data: dict, train: dict, epochs: tuple[int, int, int], layer: str = ""):
  """One family: epochs = (standard, shuffled_labels, noisy_copies)."""
  return ml_collections.ConfigDict(
    {
      "model": model,
      "data": {"cache": True, "split_fractions": (0.6, 0.1, 0.3), **data},
      "train": {"log_every_steps": 20, **train},
      "epochs": dict(zip(("standard", "shuffled_labels", "noisy_copies"), epochs, strict=True)),
      "featurevis_layer": layer,
    }
  )


def get_config(arg: str | None = None):
  variants = config_defaults.parse_variants(
    arg,
    __file__,
    valid=("smoke", "paper", "2d", "3d", "covid"),
    exclusive=(("smoke", "paper"), ("2d", "3d"), ("3d", "covid")),
  )
  c = ml_collections.ConfigDict()
  c.seed = 0
  m = c.memorisation = ml_collections.ConfigDict()
  m.regimes = ("standard", "shuffled_labels", "noisy_copies")
  m.noise_copies = 9  # the paper: the training set copied 9 times
  m.noise_std = 0.1  # of the intensity range; the paper's value is not public
  m.weight_decay = 1e-4  # standard regime only (the paper: "on"; its value is not public)
  # The paper's table: 0.002 standard, 0.001 for the others.
  m.learning_rates = {"standard": 2e-3, "shuffled_labels": 1e-3, "noisy_copies": 1e-3}
  m.activation_items = 200  # test images for the activation statistics
  m.spectral_test_items = 32  # test images whose spectral share is reported for scale
  m.featurevis_channels = 8  # the first channels of the family's featurevis_layer
  # bugnist_jax.inspection.VisOptions fields. Pixel space (as DeepVisionVR): a Fourier basis
  # would itself suppress the high frequencies the study measures; a small random start so the
  # images hold what the optimisation put there, not the start's white noise.
  m.featurevis = {
    "parameterization": "pixel",
    "steps": 128,
    "learning_rate": 0.05,
    "init_scale": 0.01,
    "transforms": "default",
    "batch_size": 8,
  }
  m.families = ml_collections.ConfigDict()
  m.families.cnn2d = family(
    model={"name": "cnn2d", "arch": 3, "dense": 128},
    data={"source": "synthetic2d", "classes": CLASSES_2D, "shape": (64, 64), "augment": "hflip",
          "num_examples": 300},
    train={"batch_size": 32},
    epochs=(12, 30, 12),
  )  # fmt: skip
  m.families.bugcnn3d = family(
    model={"name": "bugcnn3d", "channels": (8, 16, 32, 64), "dense": 64},
    data={"source": "synthetic3d", "shape": (32, 16, 16), "augment": "flip_rotate",
          "num_examples": 480},
    train={"batch_size": 16},
    epochs=(10, 30, 10),
    layer="block2",
  )  # fmt: skip
  if "paper" in variants:  # a GPU: the paper's image size, epochs and data scale
    m.featurevis.update(steps=200, batch_size=64)
    m.featurevis_channels = 64
    f2, f3 = m.families.cnn2d, m.families.bugcnn3d
    f2.data.update(shape=(150, 175), num_examples=2000)
    f2.epochs.update(standard=200, shuffled_labels=250, noisy_copies=1000)
    f3.data.update(shape=(128, 64, 64), num_examples=2400)
    f3.model.update(channels=(16, 32, 64, 128), dense=256)
    f3.epochs.update(standard=150, shuffled_labels=250, noisy_copies=1000)
  if "smoke" in variants:
    m.noise_copies = 2
    m.activation_items = 16
    m.spectral_test_items = 4
    m.featurevis_channels = 2
    m.featurevis.update(steps=2, batch_size=2, transforms="none")
    f2, f3 = m.families.cnn2d, m.families.bugcnn3d
    f2.data.update(shape=(48, 48), num_examples=60)
    f2.model.update(arch=1, dense=16)
    f2.train.update(batch_size=10, **config_defaults.SMOKE_TRAIN)
    f2.epochs.update(standard=1, shuffled_labels=1, noisy_copies=1)
    f3.data.update(shape=(16, 16, 16), num_examples=48)
    f3.model.update(channels=(4, 4, 8, 8), dense=8)
    f3.train.update(batch_size=8, **config_defaults.SMOKE_TRAIN)
    f3.epochs.update(standard=1, shuffled_labels=1, noisy_copies=1)
    f3.featurevis_layer = "block1"
  for name, other in (("2d", "bugcnn3d"), ("3d", "cnn2d")):
    if name in variants:
      del m.families[other]
  if "covid" in variants:  # the seed's models on the 2D family's data and training
    f2 = m.families.cnn2d
    epochs = (f2.epochs.standard, f2.epochs.shuffled_labels, f2.epochs.noisy_copies)
    m.families = ml_collections.ConfigDict()
    for name in ("resnet", "densenet"):
      m.families[f"covid{name}"] = family(
        {"name": name, "variant": "covid"}, f2.data.to_dict(), f2.train.to_dict(),
        epochs,
      )  # fmt: skip
  return c
