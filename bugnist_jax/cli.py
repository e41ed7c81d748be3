"""The one way to write a command: absl flags (or flags generated from an options dataclass),
an optional `--config` file with `--config.*` overrides, and one-line errors.

Every `python -m bugnist_jax.<command>` module is a thin file over `run(main, define_flags)`:

- stray positional arguments, an unknown flag, a bad flag value, a misspelled or mistyped
  `--config.*` override and a broken config file each end with one line `error: ...` on
  stderr and exit status 2 (absl alone prints its usage text and exits 1);
- a `UserError` raised by the library (bad data, a bad checkpoint, a bad option) ends the same
  way; Ctrl-C (SIGINT) and SIGTERM end with one line and status 130 / 143 (`interrupts`;
  training saves a checkpoint first and says how to resume);
- orbax's, grain's and absl's INFO logging is off unless `--verbosity` is given.
"""

import dataclasses
import re
import sys
from collections.abc import Callable
from typing import Any

from absl import app, flags, logging
from ml_collections import config_flags

from bugnist_jax import interrupts
from bugnist_jax.errors import UserError
from bugnist_jax.options import field_type

FLAGS = flags.FLAGS


def run(
  main: Callable[[flags.FlagValues], Any],
  define_flags: Callable[[], None] | None = None,
  *,
  config: bool = False,
  doc: str | None = None,
) -> None:
  """Defines the command's flags, parses them and runs `main(FLAGS)` with one-line errors.

  `config=True` adds a required `--config` (an ml_collections config file, locked, with
  `--config.*` overrides); `doc` (the command module's docstring) is the `--help` text.
  """
  interrupts.install()
  if define_flags is not None:
    define_flags()
  if config:
    config_flags.DEFINE_config_file(
      "config", None, "Config file, configs/<name>.py[:variant].", lock_config=True
    )
    flags.mark_flag_as_required("config")
  if doc:
    sys.modules["__main__"].__doc__ = doc
  app.run(_wrap(main), flags_parser=parse_flags)


def fail(message: str, status: int = 2):
  """Prints `error: <message>` as one line on stderr and exits with `status`."""
  print(f"error: {message}", file=sys.stderr, flush=True)
  sys.exit(status)


def _wrap(main):
  def wrapped(argv):
    if len(argv) > 1:
      fail(f"unexpected arguments: {' '.join(argv[1:])} (flags are --name=value)")
    if not FLAGS["verbosity"].present:
      logging.set_verbosity(logging.WARNING)  # orbax and grain are chatty at INFO
    try:
      return main(FLAGS)
    except UserError as e:
      fail(str(e), e.status)
    except KeyboardInterrupt:
      fail("interrupted", 130)

  return wrapped


def parse_flags(argv: list[str]) -> list[str]:
  """absl flags parser: a bad flag or config override (a misspelled key, a wrong type, a broken
  config file) is one line, exit 2."""
  try:
    rest = FLAGS(argv)
    if "config" in FLAGS and FLAGS["config"].value is not None:
      FLAGS["config"].value.to_dict()  # config_flags reports a bad file only on access
    return rest
  except Exception as e:  # noqa: BLE001 - config_flags raises many types; all are user errors
    text = str(e)
    if "Traceback (most recent call last)" in text:  # a config file that raised: its last line
      last = [ln for ln in text.replace("\\n", "\n").splitlines() if ln.strip()][-1].strip()
      text = last.split(": ", 1)[1] if last.split(": ", 1)[0].endswith("Error") else last
    missing = re.search(r"No such file or directory: '([^']+)", text)
    if missing and "config" in text.lower():
      text = f"--config: {missing.group(1)}: no such file"
    message = " ".join(text.replace("\\n", " ").replace("\\'", "'").strip("'\" ").split())
    if isinstance(e, AttributeError | KeyError):  # a misspelled --config.<field>
      message = f"config: no field {message.replace(chr(39), '', 1)}"
    fail(message)


def define_dataclass(cls: type, flag_values: flags.FlagValues = FLAGS) -> None:
  """One flag per field of the options dataclass `cls` (nested dataclasses flattened), with
  the field's help; `tuple[...]` fields are comma-separated lists."""
  kw = {"flag_values": flag_values}
  for field in dataclasses.fields(cls):
    default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
    if dataclasses.is_dataclass(default):
      define_dataclass(type(default), flag_values)
      continue
    kind, _, sequence = field_type(field)
    help_text = field.metadata.get("help", field.name)
    choices = field.metadata.get("choices")
    if sequence:
      flags.DEFINE_list(field.name, [str(v) for v in default], help_text, **kw)
    elif kind is bool:
      flags.DEFINE_boolean(field.name, default, help_text, **kw)
    elif kind is int:
      flags.DEFINE_integer(field.name, default, help_text, **kw)
    elif kind is float:
      flags.DEFINE_float(field.name, default, help_text, **kw)
    elif choices:
      flags.DEFINE_enum(field.name, default, list(choices), help_text, **kw)
    else:
      flags.DEFINE_string(field.name, default, help_text, **kw)


def from_flags(cls: type, values: flags.FlagValues = FLAGS) -> Any:
  """An instance of the options dataclass `cls` from the flags `define_dataclass` made; a list
  item of the wrong type is a UserError naming the flag."""
  kwargs = {}
  for field in dataclasses.fields(cls):
    default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
    if dataclasses.is_dataclass(default):
      kwargs[field.name] = from_flags(type(default), values)
      continue
    value = values[field.name].value
    kind, _, sequence = field_type(field)
    if sequence:
      try:
        value = tuple(kind(v) for v in value)
      except ValueError:
        raise UserError(
          f"--{field.name}: {','.join(value)} is not a list of {kind.__name__}s"
        ) from None
    kwargs[field.name] = value
  return cls(**kwargs)


def workdir_flag(help_text: str = "Workdir of a training run.") -> None:
  """The required `--workdir` flag."""
  flags.DEFINE_string("workdir", None, help_text)
  flags.mark_flag_as_required("workdir")
