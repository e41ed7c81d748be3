"""`python -m bugnist_jax.make_synthetic`: see `bugnist_jax.commands.make_synthetic`."""

from bugnist_jax.commands.make_synthetic import run

if __name__ == "__main__":
  run()
