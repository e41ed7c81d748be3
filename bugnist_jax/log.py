"""Messages for the user: one place that prints progress lines (stderr, flushed)."""

import sys


def say(message: str) -> None:
  """Prints `message` as one line on stderr (stdout stays for results)."""
  print(message, file=sys.stderr, flush=True)
