"""The light study: `python -m bugnist_jax.study.light --workdir=DIR
--config=configs/light_study.py` (see `bugnist_jax.study.light`)."""

from bugnist_jax import cli
from bugnist_jax.errors import UserError


def define_flags() -> None:
  cli.workdir_flag("Folder for the study (one sub-folder per model, volumes/ for the 3D ones).")


def main(f) -> None:
  from bugnist_jax.study.light import run_light_study

  for section in ("study", "volumes"):
    if section not in f.config:
      raise UserError(f"--config: needs a `{section}` section (see configs/light_study.py)")
  run_light_study(f.config, f.workdir)


def run() -> None:
  cli.run(main, define_flags, config=True, doc=__doc__)


if __name__ == "__main__":
  run()
