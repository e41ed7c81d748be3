"""`python -m bugnist_jax.train`: see `bugnist_jax.commands.train`."""

from bugnist_jax.commands.train import run

if __name__ == "__main__":
  run()
