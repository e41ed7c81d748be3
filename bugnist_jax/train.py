"""Train a model: `python -m bugnist_jax.train --config=configs/synthetic3d.py --workdir=DIR`.

Every config value can be overridden, e.g. `--config.train.num_epochs=3`. Running the same
command again resumes from the last checkpoint in DIR.
"""

from absl import app, flags
from ml_collections import config_flags

from bugnist_jax.errors import parse_flags, run_main
from bugnist_jax.training.loop import train_and_evaluate

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and figures.")
_DISTRIBUTED = flags.DEFINE_boolean(
  "distributed", False, "Multi-host: call jax.distributed.initialize() first (see README)."
)
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "Multi-host: host:port of host 0.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Multi-host: number of hosts.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "Multi-host: this host's index.")
flags.mark_flags_as_required(["config", "workdir"])


@run_main
def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if _DISTRIBUTED.value:
    import jax

    # Unset flags are found from the cluster (TPU pods, SLURM, Open MPI).
    jax.distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  final = train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  print(f"done: validation accuracy {final.get('val_accuracy', float('nan')):.4f}")


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
