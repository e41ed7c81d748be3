"""Metrics as JSON lines in the workdir: {"step": ..., "split": ..., <name>: <value>, ...}."""

import json
import pathlib


class MetricsLog:
  def __init__(self, path: pathlib.Path):
    self.path = path

  def write(self, step: int, split: str, metrics: dict) -> None:
    with open(self.path, "a") as f:
      f.write(json.dumps({"step": step, "split": split, **metrics}) + "\n")

  def truncate(self, after_step: int) -> None:
    """Drops lines logged after `after_step`: a resumed run logs those steps again."""
    if not self.path.exists():
      return
    lines = self.path.read_text().splitlines()
    keep = [ln for ln in lines if ln.strip() and json.loads(ln)["step"] <= after_step]
    self.path.write_text("".join(ln + "\n" for ln in keep))

  def read(self) -> list[dict]:
    if not self.path.exists():
      return []
    return [json.loads(ln) for ln in self.path.read_text().splitlines() if ln.strip()]
