"""What the shortcut and sanity studies share: test volumes of a run, batched maps, configs."""

import dataclasses
import pathlib

import numpy as np

from bugnist_jax.attribution import Explainer, Options, display_map
from bugnist_jax.data import datasets
from bugnist_jax.training.experiment import load_trained_model
from bugnist_jax.training.loop import packing_transform


@dataclasses.dataclass
class TestVolumes:
  """The first test items of a trained run, as the run's model sees them.

  images uint8 [N, *spatial, C] (cotton removed if the run removed it); raw uint8 [N, *spatial]
  (before any removal, for figures); labels int [N]; bug and cotton uint8 [N, *spatial] (ground
  truth of synthetic sources, None otherwise).
  """

  images: np.ndarray
  raw: np.ndarray
  labels: np.ndarray
  bug: np.ndarray | None
  cotton: np.ndarray | None


def load_run(run_dir: str | pathlib.Path, num: int):
  """(config, info, model, TestVolumes of the first `num` test items) of a trained run."""
  run_dir = pathlib.Path(run_dir)
  config, info, model, _ = load_trained_model(run_dir)
  test = datasets.build(config.data, run_dir).splits["test"]
  records = [test[i] for i in range(min(num, len(test)))]
  packing = packing_transform(config.data)
  seen = [packing.map(r) for r in records] if packing is not None else records

  def stack(key):
    return np.stack([r[key] for r in records]) if key in records[0] else None

  vols = TestVolumes(
    images=np.stack([r["image"] for r in seen]),
    raw=stack("image")[..., 0],
    labels=stack("label").astype(np.int32),
    bug=stack("mask"),
    cotton=stack("cotton"),
  )
  return config, info, model, vols


def explain_batched(
  explainer: Explainer, method: str, x: np.ndarray, targets: np.ndarray, opts: Options, batch: int
) -> np.ndarray:
  """Displayed maps `[N, *spatial]` of `method` for x `[N, *spatial, C]`, `batch` at a time.

  The last batch is padded by repeating its final item, so every call has one shape and the
  method compiles once.
  """
  out = []
  for start in range(0, len(x), batch):
    xb, tb = x[start : start + batch], targets[start : start + batch]
    n = len(xb)
    if n < batch:
      xb = np.concatenate([xb, np.repeat(xb[-1:], batch - n, 0)])
      tb = np.concatenate([tb, np.repeat(tb[-1:], batch - n, 0)])
    out.append(display_map(method, explainer(method, xb, tb, opts))[:n])
  return np.concatenate(out)
