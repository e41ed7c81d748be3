"""Ctrl-C and SIGTERM: one line and a non-zero exit in every command; training saves first.

`install()` (every command, from its first import of `bugnist_jax`) makes SIGINT and SIGTERM
print one line and end the process at once, status 130 / 143. Python's own KeyboardInterrupt is
not enough: raised between two bytecodes, it can land inside jax's garbage-collection callback
or a library's finaliser, where Python prints "Exception ignored ... KeyboardInterrupt" with a
traceback and carries on (seen with a training run that then finished with status 0).

`StopRequest` (the training loop) turns the first signal into a request that the loop polls
between steps (it saves a checkpoint of the current step and stops), and a second one into an
immediate exit. Handlers are only set from the main thread, and a signal the parent process
ignores (`nohup`, a background job) stays ignored.
"""

import contextlib
import os
import signal
import sys
import threading
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)
STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + the signal number, as shells report


def _line(text: str) -> None:
  """Writes one line to stderr with os.write: a handler may run while the main thread is in
  the middle of a print, and the buffered stream would refuse a reentrant write."""
  newline = "\n" if os.isatty(2) else ""  # end a progress bar's line first
  with contextlib.suppress(OSError, ValueError, RuntimeError):
    sys.stdout.flush()
  os.write(2, f"{newline}{text}\n".encode())


def exit_now(signum: int, text: str | None = None) -> None:
  """Prints `error: <text>` (default: interrupted / terminated) and exits with the signal's
  status, skipping cleanup (nothing a command writes after training needs it)."""
  _line(f"error: {text or ('interrupted' if signum == signal.SIGINT else 'terminated')}")
  os._exit(STATUS.get(signum, 130))


def _exit_handler(signum: int, frame: FrameType | None) -> None:
  exit_now(signum)


def _set_handlers(handler) -> dict[int, object]:
  """Sets `handler` for SIGINT and SIGTERM unless ignored; returns the handlers it replaced."""
  if threading.current_thread() is not threading.main_thread():
    return {}
  replaced = {}
  for s in SIGNALS:
    previous = signal.getsignal(s)
    if previous is signal.SIG_IGN:
      continue
    replaced[s] = previous
    signal.signal(s, handler)
  return replaced


def install() -> None:
  """SIGINT and SIGTERM end the process at once with one line (see the module docstring).
  Marks the environment, so the worker processes the command starts ignore Ctrl-C."""
  _set_handlers(_exit_handler)
  os.environ[_COMMAND_ENV] = str(os.getpid())


# Set by `install` to the command's pid; inherited by the processes it starts.
_COMMAND_ENV = "BUGNIST_JAX_COMMAND_PID"


def is_worker_of_command() -> bool:
  """True in a process started by a command (grain's data workers, which inherit its
  environment and import bugnist_jax first thing when they start)."""
  pid = os.environ.get(_COMMAND_ENV)
  return pid is not None and pid != str(os.getpid())


def ignore_sigint() -> None:
  """Ctrl-C, which the terminal sends to every process of the command, is for the command's
  main process: it stops its workers itself. A worker that took it would print its own
  KeyboardInterrupt traceback (and the main process a RuntimeError about the dead worker)."""
  if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def started_as_command(argv: list[str]) -> bool:
  """True when the interpreter runs `python -m bugnist_jax.<module>` (`argv`: sys.orig_argv)."""
  return len(argv) > 2 and argv[1] == "-m" and argv[2].startswith("bugnist_jax.")


class StopRequest:
  """A context manager: the first SIGINT/SIGTERM inside asks the caller to stop (`requested`,
  polled between steps) and says so in one line; a second one exits at once."""

  def __init__(self, notice: str = "stopping: saving a checkpoint of the current step"):
    self.notice = notice
    self.signum: int | None = None
    self._replaced: dict[int, object] = {}

  def __enter__(self) -> "StopRequest":
    self._replaced = _set_handlers(self._handle)
    return self

  def __exit__(self, *exc) -> None:
    for s, previous in self._replaced.items():
      signal.signal(s, previous)
    self._replaced = {}

  def _handle(self, signum: int, frame: FrameType | None) -> None:
    if self.signum is not None:
      exit_now(signum, "interrupted again: stopped at once, without saving")
    self.signum = signum
    _line(f"{self.notice} (Ctrl-C again to stop at once, without saving)")

  @property
  def requested(self) -> bool:
    return self.signum is not None

  @property
  def status(self) -> int:
    """The exit status the stop should end with (130 for SIGINT, 143 for SIGTERM)."""
    return STATUS.get(self.signum, 130)
