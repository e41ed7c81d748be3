"""Light study: does a precortical (retina -> LGN) front-end make a CNN robust to light changes?

  python -m bugnist_jax.study.light --config=configs/light_study.py --workdir=runs/light_study

After Fioresi and Petkovic (arXiv 2202.07432). Trains every model of `config.study.models` on
the 2D data of the config (scikit-learn's real handwritten digits by default; MNIST,
FashionMNIST or SVHN from files on disk) and every model of `config.study.volume_models` on
the 3D data of `config.volumes` (the embedded synthetic volumes), each in its own sub-workdir
(resumable; `bugnist_jax.evaluate` / `explain` / `look_inside` work on them). A model's name
says what it is (`model_overrides`): `[retina_|dog_]<lenet|bugcnn3d>[_bn|_in][_aug][_pgd]`.

Then, per model, on its test split (`study.light_measures`): accuracy under the authors'
brightness sweep x -> x - mu and contrast sweep x -> (x - <x>) / sigma + <x>; Kang et al.'s KL
of its predictions to the training label marginal as Gaussian noise, blur and a brightness
shift grow; Chen et al.'s total variation of its first stage's maps on clean and noisy inputs;
its exposed filters (the front-end's, LeNet's c1) with their sums. Writes DIR/results.json,
DIR/figures/*.png and DIR/report.html (`study.light_report`).
"""

import json
import pathlib
import time

import jax
import ml_collections
import numpy as np

from bugnist_jax import validation
from bugnist_jax.config_defaults import with_overrides
from bugnist_jax.errors import UserError
from bugnist_jax.inspection import save_filters
from bugnist_jax.log import say
from bugnist_jax.runs import Run
from bugnist_jax.study import finish, light_report
from bugnist_jax.study.light_measures import Probe, label_marginal, measure
from bugnist_jax.training.loop import train_and_evaluate

# The model part of a study model's name -> the registered model it must be.
MODEL_TOKENS = {"lenet": "lenet5", "bugcnn3d": "bugcnn3d"}
FRONTEND_TOKENS = {"retina": "learned", "dog": "fixed"}
NORM_TOKENS = {"bn": "batch", "in": "instance"}
TRAINING_TOKENS = ("aug", "pgd")


def model_overrides(name: str, base, study, field: str = "config.study.models") -> dict:
  """The dotted config overrides that make study model `name` from the training config
  `base` (see the module docstring); a UserError naming `field` for a name that does not parse
  or does not fit `base`'s model."""
  tokens = name.split("_")
  bad = lambda why: UserError(f"{field}: {name!r}: {why}")
  out = {}
  if tokens[0] in FRONTEND_TOKENS:
    out["model.frontend"] = "precortical"
    out["model.frontend_variant"] = FRONTEND_TOKENS[tokens.pop(0)]
  if not tokens or tokens[0] not in MODEL_TOKENS:
    raise bad(f"expected [retina_|dog_]<{'|'.join(MODEL_TOKENS)}>[_bn|_in][_aug][_pgd]")
  model = MODEL_TOKENS[tokens.pop(0)]
  if model != base.model.name:
    raise bad(f"this list trains {base.model.name}, not {model}")
  for token in tokens:
    if token in NORM_TOKENS and "norm" in base.model:
      out["model.norm"] = NORM_TOKENS[token]
    elif token == "aug":
      out["data.light_augment"] = True
    elif token == "pgd":
      out |= {f"train.adversarial.{k}": v for k, v in study.pgd.items()}
    else:
      raise bad(f"unknown part {token!r} (valid: {', '.join([*NORM_TOKENS, *TRAINING_TOKENS])})")
  return out


def model_config(config, name: str, volumes: bool = False):
  """The training config of study model `name` (3D from `config.volumes` when `volumes`)."""
  base = config.volumes if volumes else config
  field = "config.study.volume_models" if volumes else "config.study.models"
  # The sub-runs' configs hold only what they train on, and the study's seed.
  base = ml_collections.ConfigDict(
    {k: v for k, v in base.to_dict().items() if k not in ("study", "volumes")}
  )
  base.seed = config.seed
  return with_overrides(base, **model_overrides(name, base, config.study, field))


def analyse(run_dir: pathlib.Path, study) -> tuple[dict, list[pathlib.Path]]:
  """Every measurement of one trained run (`light_measures.measure`) and its filter figures."""
  run = Run.open(run_dir)
  test = run.split("test")
  items = run.records("test", range(len(test)))
  z = np.asarray(run.normalization.invert(run.inputs(items["image"])), np.float32)
  marginal = label_marginal(run.split("train").labels(), len(run.class_names))
  probe = Probe(run.model, run.normalization, min(int(study.batch_size), len(test)))
  result = measure(probe, z, items["label"], marginal, study)
  summary = json.loads((run_dir / "train_summary.json").read_text())
  result |= {"val_accuracy": summary.get("val_accuracy"), "test_items": len(test)}
  filters = save_filters(run.model, run_dir / "inside" / "filters", title=f"{run_dir.name}: ")
  return result, filters


def _train_and_analyse(config, names, workdir, volumes: bool) -> tuple[dict, dict]:
  results, filters = {}, {}
  for name in names:
    cfg = model_config(config, name, volumes)
    say(f"== {name}: training in {workdir / name}")
    t = time.perf_counter()
    train_and_evaluate(cfg, workdir / name)
    trained = time.perf_counter() - t
    results[name], filters[name] = analyse(workdir / name, config.study)
    results[name]["train_s"] = trained
    r = results[name]
    say(
      f"  {name}: test accuracy {r['clean_accuracy']:.3f}, first-stage TV "
      f"{r['tv']['clean']:.4f} clean / {r['tv']['noisy']:.4f} noisy "
      f"({time.perf_counter() - t:.0f}s)"
    )
  return results, filters


def run_light_study(config, workdir: str | pathlib.Path) -> dict:
  """Trains (or resumes) every model, measures them, writes results.json, figures, report."""
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  s = config.study
  for field in ("models", "volume_models"):
    if len(set(s[field])) != len(s[field]):
      raise UserError(f"config.study.{field}: a model is listed twice")
  for names, volumes in ((s.models, False), (s.volume_models, True)):
    for name in names:  # every model's config before the first one trains (as shortcut's)
      cfg = model_config(config, name, volumes)
      validation.check_config(cfg, jax.device_count())
      validation.check_model_fits(cfg)
  start = time.perf_counter()
  models, filters = _train_and_analyse(config, s.models, workdir, volumes=False)
  volumes, volume_filters = _train_and_analyse(
    config, s.volume_models, workdir / "volumes", volumes=True
  )
  grids = {key: list(s[key]) for key in light_report.GRID_KEYS}
  out = {
    "data": {"source": config.data.source, "shape": list(config.data.shape)},
    "grids": grids,
    "models": models,
    "volumes": volumes,
    "authors": light_report.AUTHORS,
  }
  figures = light_report.write_figures(workdir / "figures", out)
  figures["filters"] = {**filters, **volume_filters}
  report = lambda wall: light_report.write_report(config, workdir, {**out, "wall_s": wall}, figures)
  return finish(workdir, out, report, start)


if __name__ == "__main__":  # python -m bugnist_jax.study.light: bugnist_jax.commands
  from bugnist_jax.commands.light_study import run

  run()
