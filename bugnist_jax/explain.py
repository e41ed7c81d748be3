"""`python -m bugnist_jax.explain`: see `bugnist_jax.commands.explain`."""

from bugnist_jax.commands.explain import run

if __name__ == "__main__":
  run()
