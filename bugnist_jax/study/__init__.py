"""Studies built on training and attribution: shortcut learning, saliency sanity checks,
memorisation, light changes and the learned saliency branch. Each ends with `finish`.

python -m bugnist_jax.study.shortcut --workdir=DIR [--config=configs/shortcut_study.py]
python -m bugnist_jax.study.sanity --workdir=DIR --run=RUN_DIR --config=configs/shortcut_study.py
python -m bugnist_jax.study.memorisation --workdir=DIR --config=configs/memorisation_study.py
python -m bugnist_jax.study.light --workdir=DIR --config=configs/light_study.py
python -m bugnist_jax.study.two_branch --workdir=DIR --config=configs/two_branch_study.py
"""

import json
import pathlib
import time
from collections.abc import Callable

from bugnist_jax.log import say


def finish(
  workdir: pathlib.Path, out: dict, write_report: Callable[[float], pathlib.Path], start: float
) -> dict:
  """Every study's last step: `out` plus `wall_s` (seconds since `start`, a perf_counter) to
  DIR/results.json, then `write_report(wall_s)` (returns the report's path); returns that."""
  wall = time.perf_counter() - start
  out = {**out, "wall_s": wall}
  (workdir / "results.json").write_text(json.dumps(out, indent=2, allow_nan=True))
  path = write_report(wall)
  say(f"wrote {path} ({wall / 60:.1f} min)")
  return out
