"""A small self-contained HTML report: title, sections, figures, tables, the config.

No external assets: images are linked by paths relative to the report, so the report opens in
a browser straight from the workdir (and still works after the workdir is moved or copied).
"""

import html
import math
import pathlib
from collections.abc import Mapping, Sequence

_STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1150px; color: #222; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { margin-top: 1.6em; border-bottom: 1px solid #bbb; }
table { border-collapse: collapse; margin: .8em 0; font-size: 14px; }
th, td { border: 1px solid #bbb; padding: 3px 8px; text-align: right; }
th { background: #eee; }
td:first-child, th:first-child { text-align: left; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 13px; color: #555; }
pre { background: #f6f6f6; padding: .8em; overflow-x: auto; font-size: 12px; }
"""


def format_value(v, digits: int = 3) -> str:
  """Table cell text: floats to `digits` decimals (nan as an en dash), everything else str."""
  if isinstance(v, bool):
    return str(v)
  if isinstance(v, float):
    return "\u2013" if math.isnan(v) else f"{v:.{digits}f}"
  return str(v)


class HtmlReport:
  """Collects blocks and writes one HTML file; `path` fixes where images are relative to.

  Example::

    rep = HtmlReport(workdir / "report.html", "Shortcut study")
    rep.section("Accuracy")
    rep.table([{"model": "raw", "accuracy": 0.93}])
    rep.image(workdir / "figures" / "bars.png", "Shortcut score per model")
    rep.pre(config.to_json_best_effort(indent=2), "Config")
    rep.write()
  """

  def __init__(self, path: str | pathlib.Path, title: str):
    self.path = pathlib.Path(path)
    self.title = title
    self._blocks: list[str] = []

  def section(self, heading: str, text: str | None = None) -> None:
    """A new <h2> section, with an optional paragraph of plain text."""
    self._blocks.append(f"<h2>{html.escape(heading)}</h2>")
    if text:
      self.paragraph(text)

  def paragraph(self, text: str) -> None:
    self._blocks.append(f"<p>{html.escape(text)}</p>")

  def image(self, path: str | pathlib.Path, caption: str | None = None) -> None:
    """An <img> of the file at `path`, linked relative to the report's folder."""
    rel = pathlib.Path(path).resolve().relative_to(self.path.parent.resolve()).as_posix()
    src = html.escape(rel, quote=True)
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    self._blocks.append(
      f'<figure><img src="{src}" alt="{html.escape(caption or rel)}">{cap}</figure>'
    )

  def table(
    self, rows: Sequence[Mapping], columns: Sequence[str] | None = None, caption: str | None = None
  ) -> None:
    """A table with one row per dict; columns default to the keys of the first row."""
    if not rows:
      self.paragraph("(no rows)")
      return
    columns = list(columns or rows[0].keys())
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
      "<tr>"
      + "".join(f"<td>{html.escape(format_value(r.get(c, '')))}</td>" for c in columns)
      + "</tr>"
      for r in rows
    )
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    self._blocks.append(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")

  def pre(self, text: str, heading: str | None = None) -> None:
    """Preformatted text (e.g. the config), under an optional heading."""
    if heading:
      self.section(heading)
    self._blocks.append(f"<pre>{html.escape(text)}</pre>")

  def render(self) -> str:
    title = html.escape(self.title)
    return (
      f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{title}</title>\n'
      f"<style>{_STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
      + "\n".join(self._blocks)
      + "\n</body>\n</html>\n"
    )

  def write(self) -> pathlib.Path:
    self.path.parent.mkdir(parents=True, exist_ok=True)
    self.path.write_text(self.render(), encoding="utf-8")
    return self.path
