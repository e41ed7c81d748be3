"""Tests for the HTML report writer: structure, relative images, tables, and a Chromium render."""

import html.parser
import pathlib
import shutil
import subprocess
import tempfile

import numpy as np
import pytest
from browser_support import CHROMIUM_ARGS
from matplotlib.figure import Figure

from bugnist_jax.viz.html import HtmlReport, format_value


class _Parser(html.parser.HTMLParser):
  """Collects img srcs, table rows (cells as text) and the tag nesting errors."""

  def __init__(self):
    super().__init__()
    self.imgs, self.tables, self.stack, self.errors = [], [], [], []
    self._cell = None

  def handle_starttag(self, tag, attrs):
    if tag == "img":
      self.imgs.append(dict(attrs)["src"])
      return
    if tag in ("meta",):
      return
    self.stack.append(tag)
    if tag == "table":
      self.tables.append([])
    elif tag == "tr":
      self.tables[-1].append([])
    elif tag in ("td", "th"):
      self._cell = ""

  def handle_endtag(self, tag):
    if not self.stack or self.stack[-1] != tag:
      self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
      return
    self.stack.pop()
    if tag in ("td", "th"):
      self.tables[-1][-1].append(self._cell)
      self._cell = None

  def handle_data(self, data):
    if self._cell is not None:
      self._cell += data


def _figure(path: pathlib.Path) -> pathlib.Path:
  fig = Figure(figsize=(3, 2))
  fig.add_subplot().plot(np.arange(5), np.arange(5) ** 2, color="red", lw=4)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path)
  return path


def _report(tmp_path: pathlib.Path) -> pathlib.Path:
  rep = HtmlReport(tmp_path / "report.html", "Study <&> title")
  rep.section("Numbers", "Accuracy per model.")
  rep.table(
    [
      {"model": "raw", "accuracy": 0.9312, "note": "<b>"},
      {"model": "no cotton", "accuracy": float("nan"), "note": 3},
    ]
  )
  rep.image(_figure(tmp_path / "figures" / "bars.png"), "bars")
  rep.image(_figure(tmp_path / "raw" / "eval" / "confusion.png"), "confusion")
  rep.pre('{"seed": 0, "x": "<y>"}', "Config")
  return rep.write()


def test_structure_images_and_tables(tmp_path):
  path = _report(tmp_path)
  p = _Parser()
  p.feed(path.read_text())
  assert not p.errors and not p.stack, (p.errors, p.stack)
  assert p.imgs == ["figures/bars.png", "raw/eval/confusion.png"]  # relative, POSIX
  for src in p.imgs:
    assert (path.parent / src).is_file()
  (table,) = p.tables
  assert table == [
    ["model", "accuracy", "note"],
    ["raw", "0.931", "<b>"],
    ["no cotton", "\u2013", "3"],
  ]
  text = path.read_text()
  assert "<title>Study &lt;&amp;&gt; title</title>" in text  # escaped, not markup
  assert "&quot;x&quot;: &quot;&lt;y&gt;&quot;" in text and "<pre>" in text
  assert "http" not in text  # no external assets


def test_report_moves_with_its_folder(tmp_path):
  path = _report(tmp_path / "a")
  moved = shutil.copytree(tmp_path / "a", tmp_path / "b")
  p = _Parser()
  p.feed((moved / path.name).read_text())
  assert all((moved / src).is_file() for src in p.imgs)


def test_image_outside_the_report_folder_is_refused(tmp_path):
  rep = HtmlReport(tmp_path / "sub" / "report.html", "t")
  with pytest.raises(ValueError):
    rep.image(_figure(tmp_path / "elsewhere.png"))


def test_format_value():
  assert format_value(0.5) == "0.500" and format_value(2) == "2" and format_value(True) == "True"
  assert format_value(float("nan")) == "\u2013"


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_renders_in_headless_chromium(tmp_path):
  path = _report(tmp_path)
  shot = tmp_path / "shot.png"
  with tempfile.TemporaryDirectory() as profile:
    subprocess.run(
      [
        "chromium",
        "--headless",
        *CHROMIUM_ARGS,
        f"--user-data-dir={profile}",
        f"--screenshot={shot}",
        "--window-size=900,1400",
        path.resolve().as_uri(),
      ],
      check=True,
      capture_output=True,
      timeout=60,
    )
  import matplotlib.image

  img = matplotlib.image.imread(shot)[..., :3]
  assert img.shape[:2] == (1400, 900)
  # The figures loaded: the red line of the plots is on the page (a missing image would not be).
  red = (img[..., 0] > 0.8) & (img[..., 1] < 0.3) & (img[..., 2] < 0.3)
  assert red.sum() > 200
