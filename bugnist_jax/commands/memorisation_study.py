"""The memorisation study: `python -m bugnist_jax.study.memorisation --workdir=DIR
--config=configs/memorisation_study.py` (see `bugnist_jax.study.memorisation`)."""

from bugnist_jax import cli
from bugnist_jax.errors import UserError


def define_flags() -> None:
  cli.workdir_flag("Folder for the study (one sub-folder per family and regime).")


def main(f) -> None:
  from bugnist_jax.study.memorisation import run_study

  if "memorisation" not in f.config:
    raise UserError("--config: needs a `memorisation` section (see configs/memorisation_study.py)")
  run_study(f.config, f.workdir)


def run() -> None:
  cli.run(main, define_flags, config=True, doc=__doc__)


if __name__ == "__main__":
  run()
