"""Explain a trained model's predictions with saliency maps, as figures, arrays and TIFFs.

  python -m bugnist_jax.explain --workdir=DIR --method=smoothgrad --num_samples=50 --sigma=0.15

Explains `--indices` of a split (or `--num_random` random items) with each `--method`, and
writes to DIR/explain/: one figure per item and method (3D: projections and slices through
the peak; 2D: overlays), a grid of all methods, a SmoothGrad sigma sweep (`--sigma_sweep`),
the maps as .npz, and for volumes an ImageJ TIFF (volume + every map) for Fiji or napari.
"""

import dataclasses

from absl import app, flags

from bugnist_jax.attribution import METHODS, Options
from bugnist_jax.errors import parse_flags, run_main
from bugnist_jax.explanation import explain_run

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir of a training run.")
_METHODS = flags.DEFINE_list("method", ["smoothgrad"], f"Methods: {', '.join(METHODS)}.")
_SPLIT = flags.DEFINE_string("split", "test", "Split to take items from.")
_INDICES = flags.DEFINE_list("indices", [], "Item positions in the split (default: random).")
_NUM_RANDOM = flags.DEFINE_integer("num_random", 4, "Random items when --indices is empty.")
_TARGET = flags.DEFINE_enum("target", "predicted", ["predicted", "true"], "Class to explain.")
_SIGMA_SWEEP = flags.DEFINE_list("sigma_sweep", [], "SmoothGrad sigmas for a sweep figure.")
_TIFF = flags.DEFINE_boolean("tiff", True, "Write ImageJ TIFFs of volumes and maps (3D).")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: best by validation).")
_DATA_ROOT = flags.DEFINE_string("data_root", None, "Data folder, if it moved since training.")
_O = Options()
flags.DEFINE_integer("num_samples", _O.num_samples, "SmoothGrad noisy copies.")
flags.DEFINE_float("sigma", _O.sigma, "SmoothGrad noise, a fraction of each input's (max - min).")
flags.DEFINE_integer("steps", _O.steps, "Integrated Gradients / IS-CAM steps.")
flags.DEFINE_integer("batch_size", _O.batch_size, "Samples run at once (sets peak memory).")
flags.DEFINE_integer("window", _O.window, "Occlusion window (voxels per axis).")
flags.DEFINE_integer("stride", _O.stride, "Occlusion stride.")
flags.DEFINE_string("layer", _O.layer, "Layer for CAM methods (default: last spatial stage).")
flags.DEFINE_integer("seed", _O.seed, "Seed for SmoothGrad noise and the random items.")
flags.mark_flag_as_required("workdir")


@run_main
def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  f = flags.FLAGS
  options = Options(**{fd.name: f[fd.name].value for fd in dataclasses.fields(Options)})
  explain_run(_WORKDIR.value, _METHODS.value, _SPLIT.value, _INDICES.value, _NUM_RANDOM.value,
              _TARGET.value, _SIGMA_SWEEP.value, _TIFF.value, options, _STEP.value,
              _DATA_ROOT.value)  # fmt: skip


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
