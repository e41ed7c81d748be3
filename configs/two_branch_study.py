"""The two-branch study (seed 001): a Caltech CNN with a learned saliency branch, supervised by
masks or boxes, on the embedded synthetic 2D images.

  python -m bugnist_jax.study.two_branch --config=configs/two_branch_study.py --workdir=DIR

`:smoke` is a tiny run for tests (one size, every part, a few items). `config.two_branch` is
read by the study; the rest is the training config every run starts from (each run's own
config is saved in its sub-workdir).
"""

import ml_collections

from bugnist_jax import config_defaults


def get_config(arg: str | None = None):
  variants = config_defaults.parse_variants(arg, __file__, valid=("smoke",))
  c = config_defaults.base(model="cnn2d")
  config_defaults.data_2d(c, shape=(64, 64))
  # Architecture 1 at 64x64: conv1 16x16, conv2 7x7, pool2 3x3 (the CAM layer); the decoder
  # reads all three (saliency_branch.default_sources).
  c.model.arch = 1
  c.model.dense = 64
  c.train.optimizer = "adam"
  c.train.batch_size = 20
  c.train.num_epochs = 30
  c.train.learning_rate = 3e-3
  c.train.log_every_steps = 10
  c.train.keep_checkpoints = 1
  c.eval.batch_size = 50

  c.two_branch = ml_collections.ConfigDict()  # bugnist_jax.study.two_branch
  c.two_branch.parts = ("sizes", "transfer", "shortcut")
  c.two_branch.sizes = (20, 50, 100)  # training items per class
  c.two_branch.eval_per_class = 20  # validation and test items per class
  c.two_branch.conditions = ("plain", "box", "mask", "right_reasons")
  c.two_branch.decoder = "unet"  # config.saliency_branch.decoder of the two-branch runs
  c.two_branch.right_reasons_weight = 10.0
  c.two_branch.methods = ("learned", "vanilla_gradient", "smoothgrad", "grad_cam")
  c.two_branch.cam_layer = ""  # '' = the model's cam_layer
  c.two_branch.iou_threshold = 0.5  # of the map's max
  c.two_branch.source_classes = ("bonsai", "hawksbill", "menorah")  # transfer: pretraining
  c.two_branch.source_per_class = 100
  c.two_branch.target_classes = ("scorpion", "sunflower")  # transfer: fine-tuning, no masks
  c.two_branch.target_per_class = 20
  c.two_branch.transfer_conditions = ("scratch", "pretrained_plain", "pretrained_mask")
  c.two_branch.shortcut_patch = 1.0  # probability that the patch tells the class (training)
  c.two_branch.shortcut_per_class = 50
  c.two_branch.shortcut_conditions = ("plain", "mask", "right_reasons")
  c.two_branch.num_explain = 50  # test items for the map metrics
  c.two_branch.num_figure = 4
  c.two_branch.smoothgrad_samples = 8
  c.two_branch.batch_size = 25  # items explained at once
  c.two_branch.seed = 0
  if "smoke" in variants:
    c.data.shape = (32, 32)
    c.model.dense = 8
    c.train.batch_size = 5
    c.train.num_epochs = 1
    c.train.log_every_steps = 2
    c.train.update(config_defaults.SMOKE_TRAIN)
    c.eval.batch_size = 10
    s = c.two_branch
    s.sizes = (2,)
    s.eval_per_class = 2
    # One run per part: the smoke variant checks the plumbing, not the comparisons.
    s.conditions = ("mask",)
    s.methods = ("learned", "grad_cam")
    s.source_per_class, s.target_per_class, s.shortcut_per_class = 2, 3, 2
    s.transfer_conditions = ("pretrained_mask",)
    s.shortcut_conditions = ("plain",)
    s.num_explain = 4
    s.num_figure = 2
    s.smoothgrad_samples = 2
    s.batch_size = 4
  return c
