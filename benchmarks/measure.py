"""Timing with warm-up and repeats, interleaved across runners; peak memory."""

import dataclasses
import os
import threading
import time
from collections.abc import Callable

import numpy as np

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
  """Resident set size of this process now."""
  with open("/proc/self/statm") as f:
    return int(f.read().split()[1]) * _PAGE


class PeakRss:
  """Context manager sampling RSS every 5 ms; `.peak` is the highest value seen."""

  def __enter__(self):
    self.peak = rss_bytes()
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._poll, daemon=True)
    self._thread.start()
    return self

  def _poll(self):
    while not self._stop.wait(0.005):
      self.peak = max(self.peak, rss_bytes())

  def __exit__(self, *exc):
    self._stop.set()
    self._thread.join()
    self.peak = max(self.peak, rss_bytes())


@dataclasses.dataclass
class Runner:
  """One measured thing. `setup()` compiles/warms up; `call()` runs one unit and waits for it.

  `items` is how many volumes (or maps) one call processes; `info` ends up in the JSON.
  `device_peak()` (optional) returns accelerator peak bytes after the calls.
  """

  name: str
  setup: Callable[[], float | None]
  call: Callable[[], None]
  items: int
  info: dict = dataclasses.field(default_factory=dict)
  device_peak: Callable[[], int | None] = lambda: None


class Session:
  """One runner's measurement: `prepare()` (setup + warm-up), `round()` (one timed call),
  `finish()` (the result record). `benchmarks.isolation` drives the same three steps in a
  child process."""

  def __init__(self, runner: Runner, warmup: int = 1):
    self.runner, self.warmup, self.times = runner, warmup, []

  def prepare(self) -> None:
    self.base = rss_bytes()
    with PeakRss() as self.mem:
      start = time.perf_counter()
      self.compile_s = self.runner.setup()
      self.first_s = time.perf_counter() - start
      for _ in range(self.warmup):
        self.runner.call()

  def round(self) -> float:
    with PeakRss() as mem:
      start = time.perf_counter()
      self.runner.call()
      seconds = time.perf_counter() - start
    self.mem.peak = max(self.mem.peak, mem.peak)
    self.times.append(seconds)
    return seconds

  def finish(self) -> dict:
    """compile_s (what setup reports, else setup minus one steady call), times_s, rate
    median/min/max (items per second), peak RSS growth over the pre-setup RSS."""
    r = self.runner
    times = np.asarray(self.times)
    rates = r.items / times
    compile_s = self.compile_s
    if compile_s is None:  # setup ran the first (compiling) call itself
      compile_s = max(self.first_s - float(np.median(times)), 0.0)
    peak = r.device_peak()
    return {
      "name": r.name,
      "items": r.items,
      "compile_s": float(compile_s),
      "times_s": [float(t) for t in times],
      "rate_median": float(np.median(rates)),
      "rate_min": float(rates.min()),
      "rate_max": float(rates.max()),
      "peak_rss_growth_mb": (self.mem.peak - self.base) / 2**20,
      "device_peak_mb": None if peak is None else peak / 2**20,
      **r.info,
    }


def interleave(sessions: list, repeats: int) -> list[dict]:
  """Prepares every session, then times them in turn, `repeats` rounds (noise hits all alike)."""
  for s in sessions:
    s.prepare()
  for _ in range(repeats):
    for s in sessions:
      s.round()
  return [s.finish() for s in sessions]


def run_interleaved(runners: list[Runner], repeats: int, warmup: int = 1) -> list[dict]:
  """All runners in this process, timed in interleaved rounds (see `Session.finish`)."""
  return interleave([Session(r, warmup) for r in runners], repeats)
