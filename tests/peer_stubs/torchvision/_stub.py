"""What every stand-in raises when used."""


def unavailable(name: str):
  """A callable that raises NotImplementedError naming `name`."""

  def fail(*args, **kwargs):
    raise NotImplementedError(f"{name}: the parity tests' torchvision stand-in has no {name}")

  return fail


class Unavailable:
  """A class whose instances cannot be made (a stand-in for a torchvision class)."""

  def __init__(self, *args, **kwargs):
    unavailable(type(self).__name__)()
