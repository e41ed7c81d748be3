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


def parse_flags(argv: list[str]) -> list[str]:
  """absl flags parser for `app.run(main, flags_parser=parse_flags)`: a bad flag or config
  override (a misspelled key, a wrong type, a broken config file) is one line, exit 2."""
  try:
    rest = flags.FLAGS(argv)
    if "config" in flags.FLAGS and flags.FLAGS["config"].value is not None:
      flags.FLAGS["config"].value.to_dict()  # config_flags reports a bad file only on access
    return rest
  except Exception as e:  # noqa: BLE001 - config_flags raises many types; all are user errors
    message = " ".join(str(e).replace("\\n", " ").replace("\\'", "'").strip("'\" ").split())
    if isinstance(e, AttributeError | KeyError):  # a misspelled --config.<field>
      message = f"config: no field {message.replace(chr(39), '', 1)}"
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)
