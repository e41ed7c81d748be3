"""Progress: a tqdm bar on a terminal, plain lines (no carriage returns) otherwise."""

import io

from bugnist_jax.progress import Progress, track


class _Terminal(io.StringIO):
  def isatty(self) -> bool:
    return True


def test_plain_lines_when_not_a_terminal():
  stream = io.StringIO()
  with Progress(4, "checking", unit="file", stream=stream, every=0) as bar:
    for _ in range(4):
      bar.update(1, loss=0.5)
  text = stream.getvalue()
  assert "\r" not in text
  lines = text.splitlines()
  assert len(lines) == 4 and lines[-1].startswith("checking: 4/4 files, ")
  assert lines[-1].endswith("loss=0.5") and "eta 0s" in lines[-1]


def test_short_tasks_stay_silent_in_logs_and_disabled_bars_print_nothing():
  quiet, off = io.StringIO(), _Terminal()
  assert list(track(range(3), "scan", stream=quiet)) == [0, 1, 2]  # under `every` seconds
  with Progress(3, "x", stream=off, enabled=False) as bar:
    bar.update(3)
  assert quiet.getvalue() == "" and off.getvalue() == ""


def test_a_tqdm_bar_on_a_terminal():
  stream = _Terminal()
  assert list(track(range(5), "explaining", stream=stream, unit="item")) == list(range(5))
  text = stream.getvalue()
  assert "\r" in text and "explaining" in text and "5/5" in text
