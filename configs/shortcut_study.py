"""The shortcut-learning study (raw vs cotton removed vs right for the right reasons), and the
sanity checks of its raw model.

  python -m bugnist_jax.study.shortcut --workdir=runs/shortcut_study \
      --config=configs/shortcut_study.py
  python -m bugnist_jax.study.sanity --workdir=runs/sanity --run=runs/shortcut_study/raw \
      --config=configs/shortcut_study.py

Sized to run in about 10 minutes on 2 CPU cores. `:smoke` is a tiny run for tests.
`config.study` is read by the shortcut study, `config.sanity` by the sanity study; the rest is
the training config every condition starts from (each condition's own config is saved in its
sub-workdir).
"""

import ml_collections

from bugnist_jax import config_defaults


def get_config(arg: str | None = None):
  variants = config_defaults.parse_variants(arg, __file__, valid=("smoke",))
  c = config_defaults.base(model="bugcnn3d")
  c.data.source = "synthetic3d"
  c.data.shape = (32, 16, 16)  # small: the study trains three models and explains many volumes
  c.data.num_examples = 960
  c.data.shortcut_strength = 1.0  # the cotton gives the class away, as in the BugNIST study
  c.data.packing_threshold = 90  # keeps 82% of bug voxels and 0.4% of cotton at 32x16x16
  c.model.channels = (8, 16, 32, 64)
  c.model.dense = 64
  c.train.batch_size = 16
  c.train.num_epochs = 6
  c.train.learning_rate = 2e-3
  c.train.log_every_steps = 20
  c.train.keep_checkpoints = 1

  c.study = ml_collections.ConfigDict()  # bugnist_jax.study.shortcut
  c.study.conditions = ("raw", "cotton_removed", "right_reasons")
  c.study.right_reasons_weight = 10.0  # train.extra_loss_weight of the right_reasons model
  c.study.methods = ("smoothgrad", "vanilla_gradient", "integrated_gradients", "grad_cam")
  c.study.cam_layer = "block2"  # deeper stages of a 32x16x16 volume are 1-4 voxels long
  c.study.num_explain = 96  # test volumes for the attribution metrics
  c.study.num_figure = 4  # test volumes shown in the map figures
  c.study.num_faithfulness = 16  # test volumes for ROAD deletion / insertion (0: skip)
  c.study.faithfulness_steps = 10
  c.study.smoothgrad_samples = 16
  c.study.ig_steps = 16
  c.study.batch_size = 16  # volumes explained at once
  c.study.seed = 0

  c.sanity = ml_collections.ConfigDict()  # bugnist_jax.study.sanity
  c.sanity.methods = (
    "vanilla_gradient",
    "smoothgrad",
    "integrated_gradients",
    "guided_backprop",
    "grad_cam",
    "guided_grad_cam",
    "input_x_gradient",
  )
  c.sanity.cam_layer = "block2"
  c.sanity.num_examples = 8  # test volumes compared
  c.sanity.random_label_epochs = 4  # training of the label-randomised model (0: skip that test)
  c.sanity.smoothgrad_samples = 16
  c.sanity.ig_steps = 16
  c.sanity.seed = 0
  if "smoke" in variants:
    c.data.shape = (16, 16, 16)
    c.data.num_examples = 48
    c.model.channels = (4, 4, 8, 8)
    c.model.dense = 8
    c.train.batch_size = 8
    c.train.num_epochs = 1
    c.train.log_every_steps = 5
    c.eval.batch_size = 8
    c.train.update(config_defaults.SMOKE_TRAIN)
    c.study.methods = ("vanilla_gradient", "grad_cam")
    c.study.cam_layer = "block1"
    c.study.num_explain = 8
    c.study.num_figure = 2
    c.study.num_faithfulness = 0  # compiling the ROAD curves takes longer than the rest
    c.study.smoothgrad_samples = 2
    c.study.ig_steps = 2
    c.study.batch_size = 8
    c.sanity.methods = ("vanilla_gradient", "guided_backprop", "grad_cam")
    c.sanity.cam_layer = "block1"
    c.sanity.num_examples = 2
    c.sanity.random_label_epochs = 1
    c.sanity.smoothgrad_samples = 2
    c.sanity.ig_steps = 2
  return c
