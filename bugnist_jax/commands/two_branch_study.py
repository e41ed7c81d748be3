"""The two-branch study: `python -m bugnist_jax.study.two_branch --workdir=DIR
--config=configs/two_branch_study.py` (see `bugnist_jax.study.two_branch`)."""

from bugnist_jax import cli
from bugnist_jax.errors import UserError


def define_flags() -> None:
  cli.workdir_flag("Folder for the study (one sub-folder per trained model).")


def main(f) -> None:
  from bugnist_jax.study.two_branch import run_two_branch

  if "two_branch" not in f.config:
    raise UserError("--config: needs a `two_branch` section (see configs/two_branch_study.py)")
  run_two_branch(f.config, f.workdir)


def run() -> None:
  cli.run(main, define_flags, config=True, doc=__doc__)


if __name__ == "__main__":
  run()
