"""Train and explain 2D and 3D CNNs in JAX/Flax NNX (see README.md and docs/ARCHITECTURE.md)."""

import sys

from bugnist_jax import interrupts

# `python -m bugnist_jax.<command>`: Ctrl-C is one line from here on, also while the command's
# imports (jax: seconds) run, before `cli.run` starts.
if interrupts.started_as_command(getattr(sys, "orig_argv", [])):
  interrupts.install()
elif interrupts.is_worker_of_command():  # a data worker: Ctrl-C is for the main process
  interrupts.ignore_sigint()
