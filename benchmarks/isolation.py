"""Where runners run: all in this process, or each in its own child process, still interleaved.

`--isolation=process` (the default) gives every runner a fresh process, started with `spawn`:
its own allocator state (a JAX runner's freed buffers no longer shape torch's page faults), its
own thread pools (torch's OpenMP workers spin for a while after each parallel region, which took
CPU from the JAX runner that came next when both lived in one process), and its own RSS, so
`peak MB` is that runner's alone. The parent still times them in interleaved rounds: it tells
one child at a time to run one call and waits for it, so load changes hit every runner alike.
`--isolation=interleaved` keeps everything in one process (faster to start: no imports per
runner; what the tests use).
"""

import dataclasses
import importlib
import multiprocessing
import sys

from benchmarks.measure import Runner, Session, interleave

ISOLATIONS = ("process", "interleaved")


@dataclasses.dataclass(frozen=True)
class Spec:
  """A picklable recipe for a Runner: `module.fn(*args, **kwargs)` (built where it runs)."""

  module: str
  fn: str
  args: tuple = ()
  kwargs: dict = dataclasses.field(default_factory=dict)

  def build(self) -> Runner:
    return getattr(importlib.import_module(self.module), self.fn)(*self.args, **self.kwargs)


def _child(conn, spec: Spec, warmup: int, threads: int) -> None:
  """A child's loop: build the runner, then answer 'prepare', 'round' and 'finish'."""
  try:
    session = Session(spec.build(), warmup)
    if "torch" in sys.modules:  # the parent set this for its own torch; a child starts afresh
      sys.modules["torch"].set_num_threads(threads)
    while True:
      msg = conn.recv()
      if msg == "prepare":
        conn.send(("ok", session.prepare()))
      elif msg == "round":
        conn.send(("ok", session.round()))
      else:
        conn.send(("ok", session.finish()))
        return
  except Exception as e:  # reported by the parent, naming the runner
    conn.send(("error", f"{type(e).__name__}: {e}"))


class ProcessSession:
  """A `Session` whose runner lives in a child process; same three steps, over a pipe."""

  def __init__(self, spec: Spec, warmup: int, threads: int):
    ctx = multiprocessing.get_context("spawn")
    self.spec, (self.conn, child) = spec, ctx.Pipe()
    self.process = ctx.Process(target=_child, args=(child, spec, warmup, threads), daemon=True)
    self.process.start()

  def _ask(self, msg: str):
    self.conn.send(msg)
    try:
      status, value = self.conn.recv()
    except EOFError:
      status, value = "error", f"the child process died (exit code {self.process.exitcode})"
    if status != "ok":
      self.close()
      raise RuntimeError(f"{self.spec.fn}{self.spec.args}: {value}")
    return value

  def prepare(self) -> None:
    self._ask("prepare")

  def round(self) -> float:
    return self._ask("round")

  def finish(self) -> dict:
    result = self._ask("finish")
    self.close()
    return result

  def close(self) -> None:
    self.process.join(timeout=30)
    if self.process.is_alive():
      self.process.kill()


def run_group(specs: list[Spec], repeats: int, *, isolation: str, threads: int, warmup: int = 1):
  """Times one group of runners in interleaved rounds, in this process or one process each."""
  if isolation not in ISOLATIONS:
    raise ValueError(f"isolation: expected one of {', '.join(ISOLATIONS)}, got {isolation!r}")
  if isolation == "interleaved":
    return interleave([Session(s.build(), warmup) for s in specs], repeats)
  sessions = [ProcessSession(s, warmup, threads) for s in specs]
  try:
    return interleave(sessions, repeats)
  finally:
    for s in sessions:
      if s.process.is_alive():
        s.process.kill()
