"""The saliency sanity checks: `python -m bugnist_jax.study.sanity --workdir=DIR
--run=TRAINED_RUN_DIR --config=configs/shortcut_study.py` (see `bugnist_jax.study.sanity`)."""

from absl import flags

from bugnist_jax import cli
from bugnist_jax.errors import UserError


def define_flags() -> None:
  cli.workdir_flag("Folder for the sanity study.")
  flags.DEFINE_string("run", None, "Workdir of the trained run to check.")
  flags.mark_flag_as_required("run")


def main(f) -> None:
  from bugnist_jax.study.sanity import run_sanity

  if "sanity" not in f.config:
    raise UserError("--config: needs a `sanity` section (see configs/shortcut_study.py)")
  run_sanity(f.config, f.workdir, f.run)


def run() -> None:
  cli.run(main, define_flags, config=True, doc=__doc__)


if __name__ == "__main__":
  run()
