"""Feature visualisation of a trained run: `python -m bugnist_jax.featurevis --workdir=DIR`.

For one stage (--layer, default the model's CAM layer) and its channels (--channels, default
the first --max_channels), optimises one input per channel that maximises the channel's mean
activation (--objective; `bugnist_jax.featurevis`), and writes to DIR/featurevis/:
- <layer>.npz and <layer>.json: the cache (the format is in `inspection.visualization`); the
  same settings again load it, other settings recompute;
- <layer>.png: each channel's image (2D: RGB; 3D: MIPs and centre slices) captioned with the
  activation reached, beside its top activating patch of --split; intensities through the
  inverse of the run's normalisation;
- <layer>.tif (volumes): every channel's image as a channel of one ImageJ hyperstack.
"""

from bugnist_jax import cli
from bugnist_jax.inspection.visualization_figures import FeatureVisRequest


def define_flags() -> None:
  cli.workdir_flag()
  cli.define_dataclass(FeatureVisRequest)


def main(f) -> None:
  from bugnist_jax.inspection.visualization_figures import write_visualizations

  paths = write_visualizations(f.workdir, cli.from_flags(FeatureVisRequest, f))
  print("wrote " + ", ".join(map(str, paths)))


def run() -> None:
  cli.run(main, define_flags, doc=__doc__)


if __name__ == "__main__":
  run()
