"""User-facing errors: one clear line naming the file or field at fault (`cli` prints them)."""


class UserError(Exception):
  """Bad input from the user (data, config, checkpoint, a flag). One line, exit status 2."""

  status = 2


class Interrupted(UserError):
  """Training stopped by a signal after saving a checkpoint: one line, exit status `status`
  (130 for SIGINT, 143 for SIGTERM)."""

  def __init__(self, message: str, status: int = 130):
    super().__init__(message)
    self.status = status
