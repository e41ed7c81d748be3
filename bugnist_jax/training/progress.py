"""A dependency-free progress bar: redraws one line on a terminal, prints lines in a log."""

import sys
import time


class Progress:
  """Shows `step/total`, a bar, rate and ETA, and the latest metrics."""

  def __init__(self, total: int, start: int = 0, unit: str = "step", stream=None):
    self.total, self.start, self.unit = total, start, unit
    self.stream = stream or sys.stderr
    self.tty = self.stream.isatty()
    self.t0 = time.perf_counter()
    self.last_print = 0.0

  def update(self, step: int, **metrics: float) -> None:
    now = time.perf_counter()
    if not self.tty and now - self.last_print < 10 and step < self.total:
      return  # in a log file, a line every 10 s at most
    self.last_print = now
    done = step - self.start
    rate = done / max(now - self.t0, 1e-9)
    eta = (self.total - step) / rate if rate > 0 else float("inf")
    width = 24
    filled = int(width * step / max(self.total, 1))
    bar = "#" * filled + "-" * (width - filled)
    text = " ".join(f"{k}={v:.4g}" for k, v in metrics.items())
    line = f"[{bar}] {step}/{self.total} {rate:.2f} {self.unit}/s eta {eta:.0f}s {text}"
    if self.tty:
      self.stream.write("\r" + line[:160].ljust(160))
      if step >= self.total:
        self.stream.write("\n")
    else:
      self.stream.write(line + "\n")
    self.stream.flush()
