"""Every config field with its default and meaning; config files override what they need.

Configs are locked: a misspelled key on the command line or in a file is an error.
"""

import ml_collections
from ml_collections import config_dict


def base() -> ml_collections.ConfigDict:
  """The full config tree, defaults for the BugNIST 3D CNN."""
  c = ml_collections.ConfigDict()
  c.seed = 0  # model init, dropout and data order

  c.data = ml_collections.ConfigDict()
  c.data.source = "synthetic3d"  # a key of bugnist_jax.data.datasets.SOURCES
  c.data.root = config_dict.placeholder(str)  # data folder for sources read from disk
  c.data.shape = (64, 32, 32)  # spatial shape every item must have (Z, Y, X) / (H, W)
  c.data.num_examples = 2400  # synthetic sources: how many to generate
  c.data.shortcut_strength = 0.5  # synthetic3d: 0 = cotton says nothing, 1 = gives class away
  c.data.seed = 0  # synthetic generation and the split
  c.data.split_fractions = (0.7, 0.15, 0.15)  # train, validation, test
  c.data.split_csv = config_dict.placeholder(str)  # use this split (item,label,split) instead
  c.data.remove_packing = False  # threshold + largest connected component (cotton removal)
  c.data.packing_threshold = 90  # uint8 intensity for remove_packing
  c.data.packing_min_size = 0  # voxels; smaller largest component -> blank volume
  c.data.mask_from_threshold = False  # training: `mask` = largest component above the threshold
  c.data.shuffle_labels = False  # training labels permuted (data randomisation sanity check)
  c.data.augment = True  # random flips and 90-degree rotations about the tube axis
  c.data.classes = ()  # imagefolder: class folder names to use, in label order (empty: all)
  c.data.num_workers = 0  # grain worker processes (0: threads in the main process)
  c.data.prefetch = 4  # batches read ahead
  c.data.normalization_examples = 128  # training items used to fit mean and std

  c.model = ml_collections.ConfigDict()
  c.model.name = "bugcnn3d"  # a key of bugnist_jax.models.MODELS
  c.model.channels = (16, 32, 64, 128)  # conv widths of the four stages
  c.model.dense = 256  # width of the hidden dense layer
  c.model.batch_norm = False
  c.model.dropout = 0.0
  # 'auto': 'planes' on CPU (3D convs as 2D ones, models/planes.py; 4-9x faster there), 'xla'
  # on GPU/TPU. Same parameters and function either way, so checkpoints move between them.
  c.model.conv_impl = "auto"
  # 'argmax' (bias, ReLU and pool in one op, cheap gradient), 'reshape' or 'window'.
  c.model.pool_impl = "argmax"

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
  c.train.checkpoint_every_epochs = 1
  c.train.keep_checkpoints = 2  # latest N, plus the best by validation accuracy
  c.train.extra_loss = ""  # '' or a key of bugnist_jax.training.losses.EXTRA_LOSSES
  c.train.extra_loss_weight = 0.0
  c.train.freeze = ()  # stage-name prefixes whose parameters stay fixed, e.g. ('conv', 'pool')

  c.eval = ml_collections.ConfigDict()
  c.eval.batch_size = 32
  return c


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
