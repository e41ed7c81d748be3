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


def run_interleaved(runners: list[Runner], repeats: int, warmup: int = 1) -> list[dict]:
  """Sets up every runner, then times them in turn, `repeats` rounds (noise hits all alike).

  Returns per runner: compile_s (setup minus one steady call, or what setup reports),
  times_s, rate median/min/max (items per second) and peak RSS growth over the pre-setup RSS.
  """
  results = []
  for r in runners:
    base = rss_bytes()
    with PeakRss() as mem:
      start = time.perf_counter()
      compile_s = r.setup()
      first = time.perf_counter() - start
      for _ in range(warmup):
        r.call()
    results.append({"base": base, "mem": mem, "compile_s": compile_s, "first_s": first, "t": []})
  for _ in range(repeats):
    for r, res in zip(runners, results, strict=True):
      with PeakRss() as mem:
        start = time.perf_counter()
        r.call()
        res["t"].append(time.perf_counter() - start)
      res["mem"].peak = max(res["mem"].peak, mem.peak)
  out = []
  for r, res in zip(runners, results, strict=True):
    times = np.asarray(res["t"])
    rates = r.items / times
    compile_s = res["compile_s"]
    if compile_s is None:  # setup ran the first (compiling) call itself
      compile_s = max(res["first_s"] - float(np.median(times)), 0.0)
    out.append(
      {
        "name": r.name,
        "items": r.items,
        "compile_s": float(compile_s),
        "times_s": [float(t) for t in times],
        "rate_median": float(np.median(rates)),
        "rate_min": float(rates.min()),
        "rate_max": float(rates.max()),
        "peak_rss_growth_mb": (res["mem"].peak - res["base"]) / 2**20,
        "device_peak_mb": None if r.device_peak() is None else r.device_peak() / 2**20,
        **r.info,
      }
    )
  return out
