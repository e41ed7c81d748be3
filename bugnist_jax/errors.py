"""User-facing errors: one clear line naming the file or field at fault."""

import sys
from collections.abc import Callable
from typing import Any

from absl import flags, logging


class UserError(Exception):
  """Bad input from the user (data, config, checkpoint). Printed as one line, exit status 2."""


def run_main(main: Callable[[Any], Any]) -> Callable[[Any], Any]:
  """Wraps an absl `main` so a UserError ends the program with one line on stderr, exit 2."""

  def wrapped(argv):
    if not flags.FLAGS["verbosity"].present:
      logging.set_verbosity(logging.WARNING)  # orbax and grain are chatty at INFO
    try:
      return main(argv)
    except UserError as e:
      print(f"error: {e}", file=sys.stderr)
      sys.exit(2)

  return wrapped
