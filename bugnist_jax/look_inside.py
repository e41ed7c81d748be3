"""Look inside a trained CNN: `python -m bugnist_jax.look_inside --workdir=DIR`.

Writes to DIR/inside/:
- features/features_<layer>.png: feature maps of every conv stage for one input (3D as MIPs);
- top_<layer>_c<channel>.png: the top-k patches of the split for one neuron (--layer,
  --channel; default the last conv stage, channel 0), cropped to its receptive field;
- top_patches_per_class.png: per class, the patches of its top-k items for the class logit
  (the receptive field of the last conv stage's Grad-CAM peak; see inspection.patches);
- saliency_<class>.png (2D runs): guided backprop and Grad-CAM (last conv stage) for one item
  of each class, for its true class.
"""

import pathlib

from absl import app, flags

from bugnist_jax.errors import run_main
from bugnist_jax.inspection.report import look_inside

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir of a training run.")
_LAYER = flags.DEFINE_string("layer", None, "Stage for the top patches (default: last conv).")
_CHANNEL = flags.DEFINE_integer("channel", 0, "Channel (or logit / class index) of --layer.")
_TOP_K = flags.DEFINE_integer("top_k", 6, "Patches per row.")
_SPLIT = flags.DEFINE_string("split", "validation", "Split to scan: train, validation, test.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: best by validation).")
_DATA_ROOT = flags.DEFINE_string("data_root", None, "Data folder, if it moved since training.")
flags.mark_flag_as_required("workdir")


@run_main
def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  paths = look_inside(_WORKDIR.value, _LAYER.value, _CHANNEL.value, _TOP_K.value, _SPLIT.value,
                      _STEP.value, _DATA_ROOT.value)  # fmt: skip
  print(f"wrote {len(paths)} figures to {pathlib.Path(_WORKDIR.value) / 'inside'}")


if __name__ == "__main__":
  app.run(main)
