"""Walk through a trained network layer by layer in the browser, 2D or 3D.

  python -m bugnist_jax.view --workdir=DIR [--port=8765] [--host=127.0.0.1]
  python -m bugnist_jax.view --workdir=DIR --export=SITE --items=test:0,test:5,noise:0

Serves the viewer on 127.0.0.1 (this machine only unless --host says otherwise) and prints its
URL: the model's stages as a graph, an input picker (items of the run's splits, or noise),
every stage's channels as panels on a blue/black/red map (3D: a slice slider and MIPs), weight
and activation histograms, receptive fields, the top-k classes, attribution overlays from the
explain method table and cached feature visualisations. `--export` writes the same page for
`--items` as a static folder that opens from disk with no server. The flags are the fields of
`viewer.ViewRequest` and `attribution.Options`.
"""

from bugnist_jax import cli
from bugnist_jax.viewer.app import ViewRequest


def define_flags() -> None:
  cli.workdir_flag()
  cli.define_dataclass(ViewRequest)


def main(f) -> None:
  from bugnist_jax.viewer.app import view

  view(f.workdir, cli.from_flags(ViewRequest, f))


def run() -> None:
  cli.run(main, define_flags, doc=__doc__)


if __name__ == "__main__":
  run()
