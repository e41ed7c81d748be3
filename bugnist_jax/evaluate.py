"""`python -m bugnist_jax.evaluate`: see `bugnist_jax.commands.evaluate`."""

from bugnist_jax.commands.evaluate import run

if __name__ == "__main__":
  run()
