"""Progress bars: tqdm on a terminal; plain lines (no carriage returns) in a log file or a pipe.

One helper for training, evaluation, explain, the studies, dataset scans and the benchmarks:

    with Progress(total, "scanning", unit="file") as bar:
      for ...:
        bar.update(1, loss=0.5)    # or bar.moveto(done, ...)

On a terminal it is a tqdm bar (rate, ETA, the metrics as a postfix). Otherwise it prints a line
`<desc>: <done>/<total> <unit>s, <rate> <unit>/s, eta <s>s, <metrics>` at most every `every`
seconds, and a last one at the end if it printed any (short tasks stay silent in logs).
"""

import math
import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, TypeVar

try:
  from tqdm import tqdm
except ImportError:  # an image without it (the GPU benchmark machine's): plain lines only
  tqdm = None

T = TypeVar("T")
EVERY_S = 10.0  # plain lines: at most one per this many seconds


def _isatty(stream) -> bool:
  try:
    return stream.isatty()
  except (AttributeError, ValueError):
    return False


def _format(metrics: dict[str, float]) -> str:
  return " ".join(f"{k}={v:.4g}" for k, v in metrics.items())


class Progress:
  """A progress bar of `total` units (None: unknown) starting at `initial`; see the module
  docstring. `enabled=False` shows nothing (processes other than 0 of a multi-host run)."""

  def __init__(
    self,
    total: int | None,
    desc: str,
    *,
    unit: str = "it",
    initial: int = 0,
    stream: IO[str] | None = None,
    every: float = EVERY_S,
    enabled: bool = True,
  ):
    self.total, self.desc, self.unit = total, desc, unit
    self.done = self._start = initial
    self.stream = stream or sys.stderr
    self.every, self.enabled = every, enabled
    self._t0 = time.perf_counter()
    self._last_line = self._t0
    self._printed: int | None = None  # `done` at the last plain line
    self._metrics: dict[str, float] = {}
    self.bar = None
    if enabled and tqdm is not None and _isatty(self.stream):
      self.bar = tqdm(
        total=total, initial=initial, desc=desc, unit=unit, file=self.stream, dynamic_ncols=True
      )

  def update(self, n: int = 1, **metrics: float) -> None:
    """Advances by `n` units; `metrics` are shown beside the bar."""
    self.moveto(self.done + n, **metrics)

  def moveto(self, done: int, **metrics: float) -> None:
    """Moves to `done` units."""
    delta, self.done = done - self.done, done
    self._metrics.update(metrics)
    if not self.enabled:
      return
    if self.bar is not None:
      if metrics:
        self.bar.set_postfix_str(_format(self._metrics), refresh=False)
      self.bar.update(delta)
      return
    now = time.perf_counter()
    if now - self._last_line >= self.every:
      self._line(now)

  def _line(self, now: float) -> None:
    self._last_line, self._printed = now, self.done
    rate = (self.done - self._start) / max(now - self._t0, 1e-9)
    count = f"{self.done}/{self.total}" if self.total is not None else f"{self.done}"
    parts = [f"{self.desc}: {count} {self.unit}s", f"{rate:.3g} {self.unit}/s"]
    if self.total is not None and rate > 0:
      parts.append(f"eta {math.ceil((self.total - self.done) / rate)}s")
    if self._metrics:
      parts.append(_format(self._metrics))
    print(", ".join(parts), file=self.stream, flush=True)

  def close(self) -> None:
    if self.bar is not None:
      self.bar.close()
      self.bar = None
    elif self.enabled and self._printed is not None and self._printed != self.done:
      self._line(time.perf_counter())

  def __enter__(self) -> "Progress":
    return self

  def __exit__(self, *exc) -> None:
    self.close()


def track(
  items: Iterable[T], desc: str, *, total: int | None = None, unit: str = "it", **kwargs
) -> Iterator[T]:
  """Yields `items` while showing a `Progress` of them (`total` defaults to `len(items)`)."""
  if total is None and hasattr(items, "__len__"):
    total = len(items)
  with Progress(total, desc, unit=unit, **kwargs) as bar:
    for item in items:
      yield item
      bar.update()


def write(message: str, stream: IO[str] | None = None) -> None:
  """Prints one line without breaking a bar drawn on the terminal (tqdm clears and redraws)."""
  stream = stream or sys.stderr
  if tqdm is None:
    print(message, file=stream)
  else:
    tqdm.write(message, file=stream)
  stream.flush()
