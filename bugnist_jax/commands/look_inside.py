"""Look inside a trained CNN: `python -m bugnist_jax.look_inside --workdir=DIR`.

Writes to DIR/inside/:
- features/features_<layer>.png: feature maps of every spatial stage for one input (3D as MIPs);
- filters/filters_<stage>.png: the filters of stages that expose them (a precortical
  front-end's, LeNet's c1), each with its sum;
- top_<layer>_c<channel>.png: the top-k patches of the split for one neuron (--layer,
  --channel; default the model's CAM layer, channel 0), cropped to its receptive field;
- top_patches_per_class.png: per class, the patches of its top-k items for the class logit
  (the receptive field of the last spatial stage's Grad-CAM peak; see inspection.patches);
- saliency_<class>.png: each --method (guided backprop and Grad-CAM by default) for one item
  of each class, for its true class.
"""

import pathlib

from bugnist_jax import cli
from bugnist_jax.inspection.report import LookInsideRequest


def define_flags() -> None:
  cli.workdir_flag()
  cli.define_dataclass(LookInsideRequest)


def main(f) -> None:
  from bugnist_jax.inspection.report import look_inside

  paths = look_inside(f.workdir, cli.from_flags(LookInsideRequest, f))
  print(f"wrote {len(paths)} figures to {pathlib.Path(f.workdir) / 'inside'}")


def run() -> None:
  cli.run(main, define_flags, doc=__doc__)


if __name__ == "__main__":
  run()
