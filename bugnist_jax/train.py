"""Train a model: `python -m bugnist_jax.train --config=configs/synthetic3d.py --workdir=DIR`.

Every config value can be overridden, e.g. `--config.train.num_epochs=3`. Running the same
command again resumes from the last checkpoint in DIR.
"""

from absl import app, flags
from ml_collections import config_flags

from bugnist_jax.errors import run_main
from bugnist_jax.training.loop import train_and_evaluate

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and figures.")
flags.mark_flags_as_required(["config", "workdir"])


@run_main
def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  final = train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  print(f"done: validation accuracy {final.get('val_accuracy', float('nan')):.4f}")


if __name__ == "__main__":
  app.run(main)
