"""Scans that check every file first and report every bad one at once.

A reader's `scan_*` runs `check_files(paths, problem)`: each file's `problem(path)` is None or
what is wrong with it. If any is bad it raises `BadFiles`: one line with the count and the
first `SHOWN` files with their problems, carrying the full list and the good files, so that
`datasets.build` writes the list to the workdir and stops; with `config.data.skip_bad_files`
the scan gets a `skipped` list instead, and the run trains on the rest.
"""

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from bugnist_jax.errors import UserError
from bugnist_jax.progress import Progress

SHOWN = 5  # bad files named in the one-line message; the file in the workdir has them all
BAD_FILES = "bad_files.txt"  # workdir/: every bad file of a scan that stopped the run
SKIPPED_FILES = "skipped_files.txt"  # workdir/: the files config.data.skip_bad_files left out


class BadFiles(UserError):
  """Some of the `total` files of a scan under `root` are bad: `problems` [(path, what is
  wrong)]."""

  def __init__(self, root: Path, problems: list[tuple[Path, str]], total: int):
    self.root, self.problems, self.total = Path(root), problems, total
    super().__init__(self.message())

  def message(self, listed_in: Path | None = None) -> str:
    """One line: the count, the first `SHOWN` files and their problems, where the full list
    is (`listed_in`), and what to do."""
    n = len(self.problems)
    shown = "; ".join(f"{_rel(p, self.root)}: {why}" for p, why in self.problems[:SHOWN])
    more = f"; and {n - SHOWN} more" if n > SHOWN else ""
    where = f" (all listed in {listed_in})" if listed_in else ""
    return (
      f"{self.root}: {n} of {self.total} files are bad{where}: {shown}{more}. Fix or remove "
      "them, or set config.data.skip_bad_files=True to train on the rest"
    )


def _rel(path: Path, root: Path) -> str:
  try:
    return path.relative_to(root).as_posix()
  except ValueError:
    return str(path)


def write_list(path: Path, problems: Sequence[tuple[Path, str]]) -> None:
  """`path`: one line `<file>\\t<problem>` per bad file."""
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text("".join(f"{p}\t{why}\n" for p, why in problems))


def check_files(
  root: Path,
  paths: Sequence[Path],
  problem: Callable[[Path], str | None],
  what: str = "file",
  skipped: list | None = None,
) -> list[Path]:
  """The `paths` whose `problem(path)` is None. If any is bad: BadFiles naming them all, or,
  given a `skipped` list, (path, problem) appended to it. Shows progress (a bar on a
  terminal): a real dataset has thousands of files."""
  problems, good = [], []
  with Progress(len(paths), f"checking {root}", unit=what) as bar:
    for path in paths:
      why = problem(path)
      if why is None:
        good.append(path)
      else:
        problems.append((path, " ".join(why.split())))  # one line, whatever the library said
      bar.update()
  if problems and skipped is None:
    raise BadFiles(root, problems, len(paths))
  if skipped is not None:
    skipped += problems
  return good


class _Capture(logging.Filter):
  """On a library's logger: while a thread is inside `captured()`, its records go to that
  thread's list instead of the console (absl would print tifffile's errors as raw log lines)."""

  def __init__(self):
    super().__init__()
    self.local = threading.local()

  def filter(self, record: logging.LogRecord) -> bool:
    sink = getattr(self.local, "sink", None)
    if sink is None:
      return True
    sink.append(record.getMessage())
    return False


_CAPTURES: dict[str, _Capture] = {}


@contextlib.contextmanager
def captured(logger_name: str) -> Iterator[list[str]]:
  """Collects the messages logger `logger_name` emits in this thread inside the block."""
  if logger_name not in _CAPTURES:
    _CAPTURES[logger_name] = _Capture()
    logging.getLogger(logger_name).addFilter(_CAPTURES[logger_name])
  capture, messages = _CAPTURES[logger_name], []
  previous = getattr(capture.local, "sink", None)
  capture.local.sink = messages
  try:
    yield messages
  finally:
    capture.local.sink = previous
