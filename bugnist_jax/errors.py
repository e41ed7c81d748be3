"""User-facing errors: one clear line naming the file or field at fault (`cli` prints them)."""


class UserError(Exception):
  """Bad input from the user (data, config, checkpoint, a flag). One line, exit status 2."""
