"""Where runners run: all in this process, or each framework in its own child process.

`--isolation=process` (the default) gives each framework (each runner module: JAX's, torch's)
one worker process, started with `spawn` on first use and kept for the whole suite: JAX and
torch no longer share an allocator (one framework's freed arenas shaped the other's page
faults), thread pools (torch's OpenMP workers spin for a while after each parallel region,
taking CPU from the JAX runner that came next) or RSS (`peak MB` mixed both). A worker imports
its framework once (a fresh process per runner cost 3-10 s of imports each: minutes over the
quick suite's ~40 runners). The parent still times every runner in interleaved rounds: it asks
one worker at a time to run one call and waits, so load changes hit every runner alike.
`--isolation=interleaved` keeps everything in this process (what the tests mostly use).
"""

import dataclasses
import gc
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


def _serve(conn, threads: int) -> None:
  """A worker's loop: ('build', key, (spec, warmup)), then 'prepare', 'round', 'finish' for
  that key; 'exit' ends it. Every answer is ('ok', value) or ('error', message)."""
  sessions = {}
  while True:
    op, key, arg = conn.recv()
    if op == "exit":
      return
    try:
      if op == "build":
        spec, warmup = arg
        sessions[key] = Session(spec.build(), warmup)
        if "torch" in sys.modules:  # a spawned child starts with torch's default threads
          sys.modules["torch"].set_num_threads(threads)
        value = None
      elif op == "finish":
        value = sessions.pop(key).finish()
        gc.collect()  # the next runner's memory baseline without this one's garbage
      else:
        value = getattr(sessions[key], op)()
      conn.send(("ok", value))
    except Exception as e:  # reported by the parent, naming the runner
      sessions.pop(key, None)
      conn.send(("error", f"{type(e).__name__}: {e}"))


class Worker:
  """A child process that holds the sessions of one framework."""

  def __init__(self, threads: int):
    ctx = multiprocessing.get_context("spawn")
    self.conn, child = ctx.Pipe()
    self.process = ctx.Process(target=_serve, args=(child, threads), daemon=True)
    self.process.start()

  def ask(self, op: str, key: int, arg=None):
    try:
      self.conn.send((op, key, arg))
      return self.conn.recv()
    except (EOFError, OSError):  # it died: at start-up (BrokenPipe) or while running
      self.process.join(timeout=5)
      return "error", f"the worker process died (exit code {self.process.exitcode})"

  def close(self) -> None:
    if self.process.is_alive():
      self.conn.send(("exit", 0, None))
      self.process.join(timeout=30)
    if self.process.is_alive():
      self.process.kill()


class RemoteSession:
  """A `measure.Session` whose runner lives in a worker; same three steps, over a pipe."""

  def __init__(self, worker: Worker, key: int, spec: Spec, warmup: int):
    self.worker, self.key, self.spec = worker, key, spec
    self._ask("build", (spec, warmup))

  def _ask(self, op: str, arg=None):
    status, value = self.worker.ask(op, self.key, arg)
    if status != "ok":
      raise RuntimeError(f"{self.spec.fn}{self.spec.args}: {value}")
    return value

  def prepare(self) -> None:
    self._ask("prepare")

  def round(self) -> float:
    return self._ask("round")

  def finish(self) -> dict:
    return self._ask("finish")


class Workers:
  """One worker per runner module, started on first use; a dead one is replaced. Close it
  (or use it as a context manager) to end them."""

  def __init__(self, threads: int):
    self.threads, self.workers, self.count = threads, {}, 0

  def session(self, spec: Spec, warmup: int) -> RemoteSession:
    worker = self.workers.get(spec.module)
    if worker is None or not worker.process.is_alive():
      worker = self.workers[spec.module] = Worker(self.threads)
    self.count += 1
    return RemoteSession(worker, self.count, spec, warmup)

  def close(self) -> None:
    for worker in self.workers.values():
      worker.close()
    self.workers = {}

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


def run_group(
  specs: list[Spec],
  repeats: int,
  *,
  isolation: str,
  threads: int,
  warmup: int = 1,
  workers: Workers | None = None,
) -> list[dict]:
  """Times one group of runners in interleaved rounds, in this process or in `workers` (one
  process per framework; a temporary set when None)."""
  if isolation not in ISOLATIONS:
    raise ValueError(f"isolation: expected one of {', '.join(ISOLATIONS)}, got {isolation!r}")
  if isolation == "interleaved":
    return interleave([Session(s.build(), warmup) for s in specs], repeats)
  if workers is None:
    with Workers(threads) as temporary:
      return run_group(specs, repeats, isolation=isolation, threads=threads, workers=temporary)
  return interleave([workers.session(s, warmup) for s in specs], repeats)
