"""`python -m bugnist_jax.featurevis`: the command, see `bugnist_jax.commands.featurevis`.

Only `-m` runs this file; importing the package does not, so the library stays pure.
"""

from bugnist_jax.commands.featurevis import run

if __name__ == "__main__":
  run()
