"""The shortcut-learning study: `python -m bugnist_jax.study.shortcut --workdir=DIR
--config=configs/shortcut_study.py` (see `bugnist_jax.study.shortcut`)."""

from bugnist_jax import cli
from bugnist_jax.errors import UserError


def define_flags() -> None:
  cli.workdir_flag("Folder for the study (one sub-folder per model).")


def main(f) -> None:
  from bugnist_jax.study.shortcut import run_study

  if "study" not in f.config:
    raise UserError("--config: needs a `study` section (see configs/shortcut_study.py)")
  run_study(f.config, f.workdir)


def run() -> None:
  cli.run(main, define_flags, config=True, doc=__doc__)


if __name__ == "__main__":
  run()
