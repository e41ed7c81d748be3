"""`python -m bugnist_jax.view`: see `bugnist_jax.commands.view`."""

from bugnist_jax.commands.view import run

if __name__ == "__main__":
  run()
