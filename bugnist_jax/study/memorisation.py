"""Memorisation study (seed 004, DeepVisionVR): one model family per training regime, compared.

  python -m bugnist_jax.study.memorisation --workdir=runs/memorisation \
      --config=configs/memorisation_study.py

For every family of `config.memorisation.families` (a config.model, data, train and epochs per
regime: by default a 2D family (the 2D CNN) on the embedded Caltech-like images and a 3D family
(BugCNN3D) on the synthetic volumes; the model is a config field, and the seed's CovidResNet /
CovidDenseNet are the config's `:covid` variant, `model.name=resnet`/`densenet` with
`variant=covid`) and every regime of
`config.memorisation.regimes`, trains a model in DIR/<family>/<regime> (resumable; a normal
run that evaluate, explain, look_inside, featurevis and the viewer open):
  standard         augmentation and weight decay (the paper: lr 0.002, weight decay on);
  shuffled_labels  training labels permuted, no augmentation, no weight decay;
  noisy_copies     the training items once with their labels plus `noise_copies` copies with
                   white noise and random labels (`data.regime`), no augmentation or decay.
Then per run, from the last checkpoint (the memorised state, not the best by validation):
accuracies (on the items as trained, on the originals with true labels, on the noisy copies'
random labels, on test), statistics of the last spatial stage's activations on test images,
feature visualisations of one stage (cached in the run's workdir/featurevis, so the viewer
shows them) and the share of spectral energy above half Nyquist in them, in the first-layer
filters and, for scale, in test images. Writes DIR/results.json, DIR/figures/*.png and
DIR/report.html.
"""

import json
import pathlib
import time

import numpy as np
from flax import nnx

from bugnist_jax import config_defaults, viz
from bugnist_jax.data import datasets
from bugnist_jax.data.datasets import REGIMES
from bugnist_jax.errors import UserError
from bugnist_jax.inspection.visualization import VisOptions, stage_visualizations
from bugnist_jax.log import say
from bugnist_jax.models import build_model
from bugnist_jax.runs import Run
from bugnist_jax.study import finish
from bugnist_jax.study import memorisation_stats as stats
from bugnist_jax.training.loop import train_and_evaluate

SECTIONS = ("model", "data", "train")
# The paper's table "Performance metrics for the three different training strategies" (seed 004).
PAPER_TEST_ACCURACY = (
  "CovidResNet on Caltech101 0.78 / 0.01 / 0.42; on SARS-CoV-2 CT 0.96 / 0.49 / 0.97; "
  "CovidDenseNet on SARS-CoV-2 CT 0.97 / 0.50 / 0.99"
)  # a family's config sections over base(model=...)


def _set(node, values, where: str) -> None:
  """Sets `values` on the ConfigDict `node`; a key it lacks is a UserError naming `where`."""
  for key, value in values.items():
    if key not in node:
      section = where.rsplit(".", 1)[-1]
      raise UserError(f"config.memorisation.{where}.{key}: not a field of config.{section}")
    node[key] = value


def run_config(config, family: str, regime: str):
  """The training config of `family` in `regime`: base(model=...) with the family's model,
  data and train fields, then the regime's (data.regime, augmentation, weight decay, learning
  rate, epochs)."""
  m = config.memorisation
  if family not in m.families:
    raise UserError(f"config.memorisation.families: no family {family!r}")
  if regime not in REGIMES:
    raise UserError(f"config.memorisation.regimes: unknown {regime!r}; valid: {', '.join(REGIMES)}")
  fam = m.families[family]
  try:  # the model is a config field: any registered model (e.g. resnet variant=covid)
    c = config_defaults.base(model=fam.model.name)
  except ValueError as e:
    raise UserError(f"config.memorisation.families.{family}.model.name: {e}") from None
  c.seed = config.seed
  for section in SECTIONS:
    _set(c[section], fam[section].to_dict(), f"families.{family}.{section}")
  for field, table in (
    ("families.{family}.epochs", fam.epochs),
    ("learning_rates", m.learning_rates),
  ):
    if regime not in table:
      raise UserError(f"config.memorisation.{field.format(family=family)}: no {regime!r}")
  standard = regime == "standard"
  c.data.regime = regime
  c.data.noise_copies, c.data.noise_std = int(m.noise_copies), float(m.noise_std)
  if not standard:
    c.data.augment = "none"
  c.train.optimizer = "adamw"
  c.train.weight_decay = float(m.weight_decay) if standard else 0.0
  c.train.learning_rate = float(m.learning_rates[regime])
  c.train.num_epochs = int(fam.epochs[regime])
  c.train.keep_checkpoints = 1
  return c


def _abstract_model(c):
  """The model of training config `c` on its data's image shape and classes, without weights."""
  data = datasets.full_data(c.data)
  return nnx.eval_shape(lambda: build_model(c, data.image_shape, len(data.class_names)))


def validate(config) -> None:
  """Every family's config in every regime, and its model built abstractly on its data's
  shape (field values, the featurevis layer), before anything trains: a typo in the last
  family is one line now, not after hours of training the first."""
  m = config.memorisation
  if not m.regimes or not m.families:
    raise UserError("config.memorisation: needs at least one regime and one family")
  for family in m.families:
    for regime in m.regimes:
      c = run_config(config, family, regime)
    try:
      model = _abstract_model(c)
    except UserError as e:  # "config.model: ..." is the family's model (or data) section
      raise UserError(
        f"config.memorisation.families.{family}.{str(e).removeprefix('config.')}"
      ) from None
    layer = m.families[family].featurevis_layer
    if layer and layer not in model.spatial_layers():
      raise UserError(
        f"config.memorisation.families.{family}.featurevis_layer: no spatial stage {layer!r}; "
        f"valid: {', '.join(model.spatial_layers())}"
      )


def _last_step(workdir: pathlib.Path) -> int:
  return int(json.loads((workdir / "train_summary.json").read_text())["step"])


def analyse_run(config, family: str, run_dir: pathlib.Path) -> tuple[dict, dict]:
  """(numbers, shown) of one trained run; `shown` holds the feature visualisations."""
  m, fam = config.memorisation, config.memorisation.families[family]
  run = Run.open(run_dir, step=_last_step(run_dir))
  model = run.model
  result = {"step": run.step, "accuracy": stats.accuracies(run)}
  last = model.spatial_layers()[-1]
  bs = run.config.eval.batch_size
  result["activations"] = stats.activation_statistics(run, last, m.activation_items, bs)
  layer = fam.featurevis_layer or model.cam_layer()
  t = time.perf_counter()
  vis = stage_visualizations(
    run, layer, (), VisOptions(**m.featurevis.to_dict()), max_channels=m.featurevis_channels
  )
  result["featurevis"] = {
    "layer": layer,
    "channels": vis.channels.tolist(),
    "activation": vis.activation.tolist(),
    "mean_activation": float(vis.activation.mean()),
    "seconds": time.perf_counter() - t,
    "cached": vis.cached,
  }
  result["high_frequency_share"] = stats.spectral_shares(run, vis.images, m.spectral_test_items)
  return result, {"display": vis.display, "channels": vis.channels, "activation": vis.activation}


def _panel(image: np.ndarray) -> np.ndarray:
  """A display image [*S, C] as one 2D panel: itself, or a volume's MIP along Z."""
  return image.max(axis=0) if image.ndim == 4 else image


def write_figures(results: dict, shown: dict, fig_dir: pathlib.Path) -> dict:
  """Accuracy and spectral bars (a panel per family), a visualisation grid per family."""
  acc = {
    f: {r: {k: v["accuracy"][k] for k in ("fit", "train", "test")} for r, v in regimes.items()}
    for f, regimes in results.items()
  }
  hf = {
    f: {r: dict(v["high_frequency_share"]) for r, v in regimes.items()}
    for f, regimes in results.items()
  }
  paths = {"accuracy": fig_dir / "accuracy.png", "spectral": fig_dir / "high_frequency.png"}
  viz.plot_grouped_bars(acc, paths["accuracy"], "accuracy: as trained (fit), train, test")
  viz.plot_grouped_bars(hf, paths["spectral"], "share of spectral energy above Nyquist / 2")
  for family, regimes in shown.items():
    rows = [[_panel(im) for im in s["display"]] for s in regimes.values()]
    captions = [
      [f"c{c} {a:.3g}" for c, a in zip(s["channels"], s["activation"], strict=True)]
      for s in regimes.values()
    ]
    path = fig_dir / f"featurevis_{family}.png"
    layer = next(iter(results[family].values()))["featurevis"]["layer"]
    title = f"{family}: {layer} channels maximised, per regime (3D: MIP along z)"
    viz.plot_patch_grid(rows, path, captions, row_labels=list(regimes), title=title)
    paths[f"featurevis_{family}"] = path
  return paths


def _rows(results: dict, key: str) -> list[dict]:
  return [
    {"family": f, "regime": r, **{k: v for k, v in res[key].items() if k not in ("layer",)}}
    for f, regimes in results.items()
    for r, res in regimes.items()
  ]


def _conclusion(results: dict) -> str:
  parts = []
  for family, regimes in results.items():
    acc = ", ".join(f"{r} {v['accuracy']['test']:.2f}" for r, v in regimes.items())
    fv = ", ".join(f"{r} {v['high_frequency_share']['featurevis']:.3f}" for r, v in regimes.items())
    parts.append(f"{family}: test accuracy {acc}; high-frequency share of visualisations {fv}")
  return ". ".join(parts) + "."


def write_report(config, workdir: pathlib.Path, results: dict, figures: dict, wall_s: float):
  """DIR/report.html: conclusion, accuracy table, activation statistics, spectral shares,
  visualisations side by side, the config."""
  m = config.memorisation
  rep = viz.HtmlReport(workdir / "report.html", "Memorisation study")
  rep.paragraph(
    f"Families: {', '.join(results)}; regimes: {', '.join(m.regimes)}; noisy copies: "
    f"{m.noise_copies} with noise std {m.noise_std} of the intensity range and random labels; "
    f"study wall time {wall_s / 60:.1f} min. Every number is of the last checkpoint."
  )
  rep.paragraph(_conclusion(results))
  rep.section(
    "Accuracy",
    "fit: the training items with the labels they were trained on; train: the original "
    "training items, true labels; copies_fit: the noisy copies' random labels; test: true labels. "
    f"For comparison, the paper's test accuracies (standard / shuffled labels / noisy samples): "
    f"{PAPER_TEST_ACCURACY}.",
  )
  rep.table(_rows(results, "accuracy"))
  rep.image(figures["accuracy"], "Accuracy per regime")
  rep.section("Activations of the last spatial stage (test images)")
  rep.table(_rows(results, "activations"))
  rep.section(
    "High-frequency content",
    "Share of spectral energy above half the Nyquist frequency (radial |f| > 0.25 cycles per "
    "sample): in the feature visualisations, in the first-layer filters (zero-padded to 32), and "
    "in test images for scale.",
  )
  rep.table(_rows(results, "high_frequency_share"))
  rep.image(figures["spectral"], "High-frequency share per regime")
  rep.section("Feature visualisations", "Rows: regimes; captions: channel and objective reached.")
  for family in results:
    rep.image(figures[f"featurevis_{family}"], family)
  rep.pre(config.to_json_best_effort(indent=2), "Config")
  return rep.write()


def run_study(config, workdir: str | pathlib.Path) -> dict:
  """Trains (or resumes) every family in every regime, analyses, writes figures, JSON, report."""
  validate(config)
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  start = time.perf_counter()
  results, shown = {}, {}
  for family in config.memorisation.families:
    results[family], shown[family] = {}, {}
    for regime in config.memorisation.regimes:
      run_dir = workdir / family / regime
      say(f"== {family} / {regime}: training in {run_dir}")
      t = time.perf_counter()
      train_and_evaluate(run_config(config, family, regime), run_dir)
      trained = time.perf_counter() - t
      results[family][regime], shown[family][regime] = analyse_run(config, family, run_dir)
      results[family][regime]["seconds"] = {"train": trained, "total": time.perf_counter() - t}
      a = results[family][regime]["accuracy"]
      say(f"  fit {a['fit']:.3f} train {a['train']:.3f} test {a['test']:.3f}")
  figures = write_figures(results, shown, workdir / "figures")
  report = lambda wall: write_report(config, workdir, results, figures, wall)
  return finish(workdir, {"results": results}, report, start)


if __name__ == "__main__":  # python -m bugnist_jax.study.memorisation: bugnist_jax.commands
  from bugnist_jax.commands.memorisation_study import run

  run()
