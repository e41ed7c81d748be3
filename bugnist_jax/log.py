"""Messages for the user: one place that prints progress lines (stderr, flushed)."""

from bugnist_jax import progress


def say(message: str) -> None:
  """Prints `message` as one line on stderr (stdout stays for results), above any progress bar."""
  progress.write(message)
