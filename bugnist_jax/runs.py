"""One home for a trained run: `Run.open(workdir)` gives what every command after training needs.

A run's workdir holds `config.json`, `data.json` (`datasets.DataInfo`), `split.csv` and orbax
`checkpoints/` (`training.checkpoint`). evaluate, explain, look_inside, the studies, the viewer
and the benchmarks open runs here and nowhere else.
"""

import functools
import json
import pathlib
from collections.abc import Sequence

import ml_collections
import numpy as np
from flax import nnx

from bugnist_jax import config_defaults
from bugnist_jax.data import datasets
from bugnist_jax.data.sources import MASK_KEYS
from bugnist_jax.data.transforms import Normalization
from bugnist_jax.errors import UserError
from bugnist_jax.models import StagedModel, build_model
from bugnist_jax.models.adapters import Bound, eval_view
from bugnist_jax.training import checkpoint


def load_config(workdir: str | pathlib.Path) -> ml_collections.ConfigDict:
  """The config a run in `workdir` was started with, on top of today's defaults (so fields
  added since it was written have their default)."""
  path = pathlib.Path(workdir) / "config.json"
  if not path.exists():
    raise UserError(f"{path}: missing; is {path.parent} the workdir of a training run?")
  try:
    saved = json.loads(path.read_text())
    name = saved.get("model", {}).get("name", "bugcnn3d")
    base = config_defaults.base(model=name).to_dict()
  except (ValueError, AttributeError) as e:
    raise UserError(f"{path}: not a config written by a training run ({e})") from None
  return ml_collections.ConfigDict(_merged(base, saved))


def _merged(base: dict, saved: dict) -> dict:
  out = dict(base)
  for key, value in saved.items():
    out[key] = (
      _merged(base[key], value)
      if isinstance(base.get(key), dict) and isinstance(value, dict)
      else value
    )
  return out


class Run:
  """A finished (or paused) training run: its config, data facts, and the eval-mode model of
  one checkpoint (the best by validation accuracy unless `step` is given)."""

  def __init__(
    self,
    workdir,
    config,
    info: datasets.DataInfo,
    model: StagedModel,
    step: int,
    data_root: str | None = None,
  ):
    self.workdir = pathlib.Path(workdir)
    self.config, self.info, self.step = config, info, step
    self.model = eval_view(model)
    if data_root:  # data that moved since training
      self.config.data.root = data_root

  @classmethod
  def open(cls, workdir, step: int | None = None, data_root: str | None = None) -> "Run":
    """Loads the run in `workdir`; UserError naming the file if it is not a run's workdir."""
    workdir = pathlib.Path(workdir)
    config = load_config(workdir)
    info = datasets.DataInfo.load(workdir)
    abstract = nnx.eval_shape(lambda: build_model(config, info.image_shape, len(info.class_names)))
    graphdef, abstract_state = nnx.split(abstract)
    with checkpoint.manager(workdir / "checkpoints") as mngr:
      step = checkpoint.best_step(mngr) if step is None else step
      if step is None:
        raise UserError(f"{workdir / 'checkpoints'}: no checkpoint; has training run?")
      if step not in mngr.all_steps():
        raise UserError(
          f"--step: no checkpoint {step} in {mngr.directory}; saved: "
          f"{', '.join(map(str, mngr.all_steps()))}"
        )
      state = checkpoint.restore_model(mngr, step, abstract_state)
    return cls(workdir, config, info, nnx.merge(graphdef, state), step, data_root)

  @property
  def normalization(self) -> Normalization:
    """uint8 images -> model inputs (and back, `invert`), as the run was trained."""
    return self.info.normalization

  @property
  def class_names(self) -> tuple[str, ...]:
    return self.info.class_names

  @functools.cached_property
  def dataset(self) -> datasets.Dataset:
    """The run's data with its own split (built on first use: reading runs need no data)."""
    return datasets.build(self.config.data, self.workdir)

  @property
  def transforms(self) -> list:
    """The record transforms between a stored item and the model (`datasets.record_transforms`)."""
    return datasets.record_transforms(self.config.data)

  def split(self, name: str, flag: str = "--split"):
    """The source of split `name`; a UserError naming `flag` if there is no such split."""
    if name not in self.dataset.splits:
      raise UserError(f"{flag}: unknown {name!r}; valid: {', '.join(self.dataset.splits)}")
    return self.dataset.splits[name]

  def records(self, split: str, indices: Sequence[int], flag: str = "--indices") -> dict:
    """Items `indices` of `split` as the model saw them, stacked.

    Returns `image` uint8 [N, *spatial, C] after the run's record transforms (e.g. cotton
    removed), `raw_image` before them, `label` int32 [N], `index` [N], and `object_mask` /
    `shortcut_mask` uint8 [N, *spatial] where the source has them.
    """
    source = self.split(split)
    indices = np.asarray(indices, np.int64).reshape(-1)
    bad = indices[(indices < 0) | (indices >= len(source))]
    if bad.size:
      raise UserError(f"{flag}: {bad[0]} is out of range for the {len(source)} {split} items")
    raw = [source[int(i)] for i in indices]
    seen = [datasets.apply(self.transforms, r) for r in raw]
    out = {
      "image": np.stack([r["image"] for r in seen]),
      "raw_image": np.stack([r["image"] for r in raw]),
      "label": np.array([int(r["label"]) for r in raw], np.int32),
      "index": indices,
    }
    for key in MASK_KEYS:
      if key in raw[0]:
        out[key] = np.stack([r[key] for r in raw])
    return out

  def inputs(self, images: np.ndarray):
    """uint8 images [N, *spatial, C] -> normalised model inputs (float32)."""
    return self.normalization(images)

  def bound(self, layer: str | None = None) -> Bound:
    """The model as pure functions (`adapters.Bound`), CAMs at `layer` (default cam_layer)."""
    if layer is not None and layer not in self.model.layer_names:
      raise UserError(f"--layer: unknown {layer!r}; valid: {', '.join(self.model.layer_names)}")
    return Bound.from_model(self.model, layer)
