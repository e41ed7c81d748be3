"""Train a model: `python -m bugnist_jax.train --config=configs/synthetic3d.py --workdir=DIR`.

Every config value can be overridden, e.g. `--config.train.num_epochs=3`. Running the same
command again resumes from the last checkpoint in DIR. `--distributed` starts one process of a
multi-host run (see the README).
"""

from absl import flags

from bugnist_jax import cli
from bugnist_jax.errors import UserError


def define_flags() -> None:
  cli.workdir_flag("Directory for checkpoints, logs and figures.")
  flags.DEFINE_boolean(
    "distributed", False, "Multi-host: call jax.distributed.initialize() first (see README)."
  )
  flags.DEFINE_string("coordinator_address", None, "Multi-host: host:port of process 0.")
  flags.DEFINE_integer("num_processes", None, "Multi-host: number of processes.", lower_bound=1)
  flags.DEFINE_integer("process_id", None, "Multi-host: this process's index.", lower_bound=0)


def main(f) -> None:
  import jax  # here, not at the top: `--help` and flag errors stay fast

  if f.distributed:
    if f.process_id is not None and f.num_processes is not None and f.process_id >= f.num_processes:
      raise UserError(f"--process_id: {f.process_id} must be < --num_processes {f.num_processes}")
    # CPU devices of several processes need a collectives library (GPUs and TPUs bring their
    # own); set before the first computation, it changes nothing for them.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    # Unset flags are found from the cluster (TPU pods, SLURM, Open MPI).
    jax.distributed.initialize(f.coordinator_address, f.num_processes, f.process_id)
  from bugnist_jax.training.loop import train_and_evaluate

  final = train_and_evaluate(f.config, f.workdir)
  if jax.process_index() == 0:  # the other processes computed the same
    print(f"done: validation accuracy {final.get('val_accuracy', float('nan')):.4f}")


def run() -> None:
  cli.run(main, define_flags, config=True, doc=__doc__)


if __name__ == "__main__":
  run()
