"""What train, evaluate and explain share: building the model and loading a finished run."""

import dataclasses
import json
import pathlib

import jax.numpy as jnp
import ml_collections
from flax import nnx

from bugnist_jax.data.transforms import Normalization
from bugnist_jax.errors import UserError
from bugnist_jax.models import StagedModel, get_model
from bugnist_jax.training import checkpoint

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


@dataclasses.dataclass(frozen=True)
class DataInfo:
  """Facts about the data a run trained on, written to `workdir/data.json` at its start."""

  class_names: tuple[str, ...]
  image_shape: tuple[int, ...]  # [*spatial, C]
  normalization: Normalization

  def save(self, workdir: pathlib.Path) -> None:
    d = dataclasses.asdict(self)
    (workdir / "data.json").write_text(json.dumps(d, indent=2))

  @classmethod
  def load(cls, workdir: pathlib.Path) -> "DataInfo":
    path = workdir / "data.json"
    if not path.exists():
      raise UserError(f"{path}: missing; is {workdir} the workdir of a training run?")
    d = json.loads(path.read_text())
    return cls(
      tuple(d["class_names"]), tuple(d["image_shape"]), Normalization(**d["normalization"])
    )


def build_model(config, info: DataInfo, rngs: nnx.Rngs | None = None) -> StagedModel:
  """The model of `config.model` for data described by `info`."""
  kwargs = config.model.to_dict()
  name = kwargs.pop("name")
  dtype = config.train.compute_dtype
  if dtype not in DTYPES:
    raise UserError(f"config.train.compute_dtype: {dtype!r}; valid: {', '.join(DTYPES)}")
  try:
    return get_model(
      name,
      input_shape=tuple(info.image_shape[:-1]),
      in_channels=info.image_shape[-1],
      num_classes=len(info.class_names),
      dtype=DTYPES[dtype],
      rngs=rngs or nnx.Rngs(config.seed),
      **kwargs,
    )
  except (TypeError, ValueError) as e:
    raise UserError(f"config.model: {e}") from None


def load_config(workdir: pathlib.Path) -> ml_collections.ConfigDict:
  """The config a run in `workdir` was started with."""
  path = workdir / "config.json"
  if not path.exists():
    raise UserError(f"{path}: missing; is {workdir} the workdir of a training run?")
  return ml_collections.ConfigDict(json.loads(path.read_text()))


@dataclasses.dataclass(frozen=True)
class TrainedRun:
  """A finished (or paused) training run: its config, data, and the model of one checkpoint."""

  workdir: pathlib.Path
  config: ml_collections.ConfigDict
  info: DataInfo
  model: StagedModel
  step: int
  data: object  # bugnist_jax.data.datasets.Dataset, with the run's own split

  def split(self, name: str, flag: str = "--split"):
    """The source of split `name`; a UserError naming `flag` if there is no such split."""
    if name not in self.data.splits:
      raise UserError(f"{flag}: unknown {name!r}; valid: {', '.join(self.data.splits)}")
    return self.data.splits[name]


def open_run(workdir, step: int | None = None, data_root: str | None = None) -> TrainedRun:
  """Loads the run in `workdir`: best (or `step`) checkpoint and the data split it used.

  `data_root` replaces config.data.root, for data that moved since training.
  """
  from bugnist_jax.data import datasets  # data -> training; imported here to keep this light

  workdir = pathlib.Path(workdir)
  config, info, model, step = load_trained_model(workdir, step)
  if data_root:
    config.data.root = data_root
  return TrainedRun(workdir, config, info, model, step, datasets.build(config.data, workdir))


def load_trained_model(workdir: str | pathlib.Path, step: int | None = None):
  """(config, data info, model, step) of the best (or given) checkpoint of a run."""
  workdir = pathlib.Path(workdir)
  config = load_config(workdir)
  info = DataInfo.load(workdir)
  abstract = nnx.eval_shape(lambda: build_model(config, info))
  graphdef, abstract_state = nnx.split(abstract)
  with checkpoint.manager(workdir / "checkpoints") as mngr:
    step = checkpoint.best_step(mngr) if step is None else step
    if step is None:
      raise UserError(f"{workdir / 'checkpoints'}: no checkpoint; has training run?")
    state = checkpoint.restore_model(mngr, step, abstract_state)
  return config, info, nnx.merge(graphdef, state), step
