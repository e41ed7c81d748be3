"""Explain a trained model's predictions with saliency maps, as figures, arrays and TIFFs.

  python -m bugnist_jax.explain --workdir=DIR --method=smoothgrad --num_samples=50 --sigma=0.15

Explains `--indices` of a split (or `--num_random` random items) with each `--method`, and
writes to DIR/explain/: one figure per item and method (3D: projections and slices through
the peak; 2D: overlays), a grid of all methods, a SmoothGrad sigma sweep (`--sigma_sweep`),
the maps as .npz, and an ImageJ TIFF per item (image + every map) for Fiji or napari. The
flags are the fields of `attribution.ExplainRequest` and `attribution.Options`.
"""

from bugnist_jax import cli
from bugnist_jax.attribution.workflow import ExplainRequest


def define_flags() -> None:
  cli.workdir_flag()
  cli.define_dataclass(ExplainRequest)


def main(f) -> None:
  from bugnist_jax.attribution.workflow import explain_run

  explain_run(f.workdir, cli.from_flags(ExplainRequest, f))


def run() -> None:
  cli.run(main, define_flags, doc=__doc__)


if __name__ == "__main__":
  run()
