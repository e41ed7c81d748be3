"""Every config field with its default and meaning; config files override what they need.

`base(model=name)` builds the tree; `config.model` holds the fields of that model only (its
constructor's keyword defaults, `models.MODELS[name].defaults()`; the model's docstring says
what each means). Configs are locked by the commands: a misspelled key on the command line is
an error, and `models.build_model` names a field a config file set that its model lacks.
`parse_variants` is the one strict parser of `--config=file.py:variant` arguments.
"""

import ml_collections
from ml_collections import config_dict

from bugnist_jax.models import model_spec


def model_config(name: str) -> ml_collections.ConfigDict:
  """`config.model` for the registered model `name`: its name and its own fields."""
  spec = model_spec(name)
  return ml_collections.ConfigDict({"name": name, **spec.defaults()})


def base(model: str = "bugcnn3d") -> ml_collections.ConfigDict:
  """The full config tree, with `config.model` of `model` (a key of models.MODELS)."""
  c = ml_collections.ConfigDict()
  c.seed = 0  # model init, dropout and data order

  c.data = ml_collections.ConfigDict()
  c.data.source = "synthetic3d"  # a key of bugnist_jax.data.datasets.SOURCES
  c.data.root = config_dict.placeholder(str)  # data folder for sources read from disk
  c.data.shape = (64, 32, 32)  # spatial shape every item must have (Z, Y, X) / (H, W)
  c.data.num_examples = 2400  # synthetic sources: how many to generate; digits: at most
  c.data.shortcut_strength = 0.5  # synthetic3d: 0 = cotton says nothing, 1 = gives class away
  # synthetic2d: probability that a corner patch's colour tells the class (0: no patch).
  c.data.shortcut_patch = 0.0
  c.data.seed = 0  # synthetic generation and the split
  c.data.split_fractions = (0.7, 0.15, 0.15)  # train, validation, test
  c.data.split_csv = config_dict.placeholder(str)  # use this split (item,label,split) instead
  c.data.remove_packing = False  # threshold + largest connected component (cotton removal)
  c.data.packing_threshold = 90  # uint8 intensity for remove_packing
  c.data.packing_min_size = 0  # voxels; smaller largest component -> blank volume
  c.data.mask_from_threshold = False  # training: object_mask = largest component > threshold
  # Training items that keep their masks/boxes (seeded per item); the others are unannotated
  # and train the classifier only (the saliency losses are masked per item).
  c.data.annotated_fraction = 1.0
  # imagefolder / bugnist3d: optional boxes (CSV item,y0,x0,y1,x1; 2D) and masks (a folder
  # mirroring the images: .png, or .tif for volumes); items without one are unannotated
  # (bugnist_jax/data/annotations.py).
  c.data.annotations = ml_collections.ConfigDict()
  c.data.annotations.boxes_csv = config_dict.placeholder(str)
  c.data.annotations.mask_root = config_dict.placeholder(str)
  # Training regime (bugnist_jax.data.datasets.REGIMES): 'standard'; 'shuffled_labels' (labels
  # permuted by data.seed: the data randomisation test, the memorisation study); 'noisy_copies'
  # (the training items once, then noise_copies copies with white noise and random labels).
  c.data.regime = "standard"
  c.data.shuffle_labels = False  # True = regime 'shuffled_labels' (older configs' spelling)
  c.data.noise_copies = 9  # noisy_copies: copies of the training set (DeepVisionVR: 9)
  # noisy_copies: noise std as a fraction of the intensity range 0..255, added to the uint8
  # image (DeepVisionVR's value is not public; 0.1 = 25.5 grey levels, visible, not drowning).
  c.data.noise_std = 0.1
  c.data.cache = False  # keep records in memory after their first read (small data only)
  # 'flip_rotate' (random flips, 90-degree rotations about the tube axis), 'hflip' (left-right
  # flips, for natural images) or 'none'.
  c.data.augment = "flip_rotate"
  # Model inputs from uint8: 'standardize' ((x/255 - mean) / std, fitted on training items) or
  # 'unit' (x/255 in [0, 1]).
  c.data.normalization = "standardize"
  # imagefolder: class folder names to use, in label order (empty: all); synthetic2d: a subset
  # of its five classes
  c.data.classes = ()
  c.data.num_workers = 0  # grain worker processes (0: threads in the main process)
  c.data.prefetch = 4  # batches read ahead
  c.data.normalization_examples = 128  # training items used to fit mean and std
  # Sources read from disk: train on the good files when some are bad (the list of those left
  # out goes to the workdir's skipped_files.txt) instead of stopping with the list.
  c.data.skip_bad_files = False
  # Light augmentation (bugnist_jax.data.light): per training item a contrast change
  # x -> (x - <x>) / sigma + <x> and a brightness shift x -> x - mu on intensities in [0, 1].
  c.data.light_augment = False
  c.data.light_mu = (-2.0, 2.0)  # mu ~ U(low, high)
  c.data.light_sigma = (0.1, 4.0)  # sigma ~ U(low, high), low > 0

  c.model = model_config(model)  # fields: see the model class's docstring

  # A learned saliency branch on the model (models/saliency_branch.py), trained by
  # config.train.saliency_losses; the trunk and its logits are unchanged.
  c.saliency_branch = ml_collections.ConfigDict()
  c.saliency_branch.decoder = ""  # '' (none), 'unet' (skips from several stages), 'attention'
  c.saliency_branch.sources = ()  # trunk stages it reads; () = the decoder's default
  c.saliency_branch.width = 8  # channels of the decoder

  c.train = ml_collections.ConfigDict()
  c.train.batch_size = 16  # global batch, split over all local devices
  c.train.num_epochs = 10
  c.train.optimizer = "adamw"  # adam, adamw, sgd
  c.train.learning_rate = 1e-3  # peak learning rate
  c.train.schedule = "cosine"  # cosine (with warmup) or constant
  c.train.warmup_epochs = 0.5
  c.train.weight_decay = 1e-4  # adamw only
  c.train.momentum = 0.9  # sgd only
  c.train.grad_clip = 1.0  # global norm; 0 disables
  c.train.compute_dtype = "float32"  # or 'bfloat16' (parameters stay float32)
  c.train.log_every_steps = 10
  c.train.checkpoint_every_epochs = 1.0
  c.train.keep_checkpoints = 2  # latest N, plus the best by validation accuracy
  c.train.extra_loss = ""  # '' or a key of bugnist_jax.training.losses.EXTRA_LOSSES
  c.train.extra_loss_weight = 0.0
  # Saliency-branch losses (training/saliency_losses.py), any of 'mask' (BCE + Dice against
  # object_mask), 'box' (object_box as a target mask), 'gain' (attention mining); () = none.
  # Items whose `annotated` is 0 get no mask/box loss. Combinable with extra_loss.
  c.train.saliency_losses = ()
  # Weight of each term; the defaults give each term about the size of the cross-entropy.
  c.train.saliency_weights = ml_collections.ConfigDict({"mask": 1.0, "box": 1.0, "gain": 1.0})
  c.train.box_target = "filled"  # 'filled' (core 1, border band ignored) or 'gaussian'
  c.train.freeze = ()  # stage-name prefixes whose parameters stay fixed, e.g. ('conv', 'pool')
  # Stop (keeping the last good checkpoint) when the logged loss exceeds this many times its
  # first logged value, or is not finite.
  c.train.divergence_factor = 100.0
  # Validation items whose input-gradient maps go to TensorBoard at every evaluation (0: none;
  # the confusion matrix is always there).
  c.train.tensorboard_images = 2
  # PGD adversarial training (bugnist_jax.training.adversarial): every step trains on PGD
  # examples of its batch. Sizes are in intensity units (inputs in [0, 1]).
  c.train.adversarial = ml_collections.ConfigDict()
  c.train.adversarial.norm = ""  # '' (off), 'linf' or 'l2'
  c.train.adversarial.epsilon = 0.1  # radius of the ball around each input
  c.train.adversarial.steps = 7
  c.train.adversarial.step_size = 0.0  # 0: 2.5 * epsilon / steps (Madry et al.)
  c.train.adversarial.random_start = True

  c.eval = ml_collections.ConfigDict()
  c.eval.batch_size = 32
  return c


# What every `:smoke` variant sets on its training configs: no TensorBoard gradient figures
# (each costs a compile per run and two figures per evaluation; the trained runs of the tests
# that check them ask for them).
SMOKE_TRAIN = {"tensorboard_images": 0}


def data_2d(c: ml_collections.ConfigDict, shape=(224, 224)) -> None:
  """The 2D data fields of the Caltech-101 configs: the embedded synthetic images (or an image
  folder with data.root), the study's five classes, left-right flips only (upside-down or
  rotated objects are not in natural images)."""
  c.data.source = "synthetic2d"  # or 'imagefolder' with data.root
  c.data.classes = ("bonsai", "hawksbill", "menorah", "scorpion", "sunflower")
  c.data.shape = tuple(shape)  # (H, W) every image is resized to
  c.data.augment = "hflip"


def parse_variants(
  arg: str | None, path: str, valid: tuple[str, ...], exclusive: tuple[tuple[str, ...], ...] = ()
) -> frozenset[str]:
  """The variants named in `--config=<path>:<arg>`, comma-separated (e.g. 'arch3,smoke').

  Strict: an unknown variant, or two of one `exclusive` group, is a ValueError naming the
  file and the valid variants (the commands print it as one line).
  """
  names = frozenset(v.strip() for v in (arg or "").split(",") if v.strip())
  unknown = sorted(names - set(valid))
  if unknown:
    raise ValueError(f"{path}: unknown variant {unknown[0]!r}; valid: {', '.join(valid)}")
  for group in exclusive:
    chosen = sorted(names & set(group))
    if len(chosen) > 1:
      raise ValueError(f"{path}: variants {' and '.join(chosen)} exclude each other")
  return names


def with_overrides(config: ml_collections.ConfigDict, **dotted) -> ml_collections.ConfigDict:
  """A copy of `config` with dotted-key overrides, e.g. `**{'data.remove_packing': True}`."""
  c = config.copy_and_resolve_references()
  for key, value in dotted.items():
    node = c
    *parents, leaf = key.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = value
  return c


__all__ = ["base", "data_2d", "model_config", "parse_variants", "with_overrides"]
