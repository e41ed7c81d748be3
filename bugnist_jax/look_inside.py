"""`python -m bugnist_jax.look_inside`: see `bugnist_jax.commands.look_inside`."""

from bugnist_jax.commands.look_inside import run

if __name__ == "__main__":
  run()
