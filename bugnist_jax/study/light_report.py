"""The light study's figures, tables and report.html (from the numbers of `study.light`)."""

import pathlib

from bugnist_jax import viz
from bugnist_jax.study.light_measures import SHIFTS, value_at

GRID_KEYS = ("mu_grid", "sigma_grid", "kl_noise", "kl_blur", "kl_brightness")
SHIFT_LABELS = {
  "noise": "Gaussian noise std",
  "blur": "blur std (pixels)",
  "brightness": "brightness mu (x - mu)",
}
# Fioresi and Petkovic's test accuracies (their results/accuracy_sweeps CSVs, as collected in
# the project's seed notes): {dataset: {their model: {column: accuracy}}}. Their models map to
# ours: LeNet -> lenet, RetiLeNet -> retina_lenet, InstanceNorm-LeNet -> lenet_in,
# RetiLeNet-aug -> retina_lenet_aug.
_COLUMNS = ("mu=-1", "mu=0", "mu=0.4", "mu=1", "mu=2", "sigma=0.1", "sigma=2.1", "sigma=3.9")
_TABLE = {
  "MNIST": {
    "lenet": (0.151, 0.991, 0.458, 0.119, 0.103, 0.915, 0.908, 0.485),
    "retina_lenet": (0.128, 0.988, 0.971, 0.787, 0.196, 0.984, 0.980, 0.907),
    "lenet_in": (0.990, 0.990, 0.990, 0.990, 0.990, 0.990, 0.990, 0.990),
    "retina_lenet_aug": (0.988, 0.988, 0.987, 0.987, 0.987, 0.985, 0.989, 0.989),
  },
  "FashionMNIST": {
    "lenet": (0.300, 0.886, 0.662, 0.115, 0.100, 0.837, 0.737, 0.423),
    "retina_lenet": (0.803, 0.880, 0.872, 0.844, 0.778, 0.805, 0.867, 0.806),
    "lenet_in": (0.898, 0.898, 0.898, 0.898, 0.898, 0.898, 0.899, 0.899),
    "retina_lenet_aug": (0.868, 0.868, 0.865, 0.864, 0.862, 0.848, 0.869, 0.868),
  },
  "SVHN": {
    "lenet": (0.839, 0.868, 0.827, 0.081, 0.006, 0.723, 0.853, 0.776),
    "retina_lenet": (0.872, 0.889, 0.880, 0.833, 0.738, 0.849, 0.882, 0.832),
    "lenet_in": (0.878, 0.878, 0.878, 0.878, 0.878, 0.878, 0.878, 0.878),
    "retina_lenet_aug": (0.883, 0.883, 0.884, 0.883, 0.882, 0.869, 0.885, 0.885),
  },
}
AUTHORS = {
  data: {model: dict(zip(_COLUMNS, row, strict=True)) for model, row in rows.items()}
  for data, rows in _TABLE.items()
}
SOURCE_DATASETS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "svhn": "SVHN"}


def _panels(results: dict, grids: dict, kinds, keys, labels) -> dict:
  """{x label: (grid, {model: values})} for `viz.plot_curve_panels`."""
  return {
    labels[kind]: (grids[key], {name: _path(r, kind) for name, r in results.items()})
    for kind, key in zip(kinds, keys, strict=True)
  }


def _path(result: dict, kind: str) -> list[float]:
  """A model's curve `kind`: 'brightness' / 'contrast' sweeps, or 'kl.<shift>'."""
  if kind.startswith("kl."):
    return result["kl"][kind[3:]]
  return result[kind]


def write_figures(fig_dir: pathlib.Path, out: dict) -> dict:
  """The sweep, KL and TV figures: {'sweeps' | 'kl': [(path, caption)], 'tv': path | None}."""
  grids = out["grids"]
  sweep_labels = {"brightness": "brightness mu (x - mu)", "contrast": "contrast sigma"}
  kl_labels = {f"kl.{k}": v for k, v in SHIFT_LABELS.items()}
  kl_kinds = [f"kl.{k}" for k in SHIFTS]
  kl_keys = [f"kl_{k}" for k in SHIFTS]
  augmented = {k: v for k, v in out["models"].items() if "aug" in k.split("_")}
  groups = {
    "2D, trained without light augmentation": {
      k: v for k, v in out["models"].items() if k not in augmented
    },
    "2D, trained with light augmentation": augmented,
    "3D volumes": out["volumes"],
  }
  figures = {"sweeps": [], "kl": [], "tv": None}
  for i, (caption, results) in enumerate(g for g in groups.items() if g[1]):
    path = fig_dir / f"sweep_{i}.png"
    panels = _panels(
      results, grids, ("brightness", "contrast"), ("mu_grid", "sigma_grid"), sweep_labels
    )
    viz.plot_curve_panels(panels, path, "test accuracy", title=caption, ylim=(0.0, 1.02))
    figures["sweeps"].append((path, f"Test accuracy under light changes: {caption}"))
  for dims, results in (("2D", out["models"]), ("3D", out["volumes"])):
    if results:
      path = fig_dir / f"kl_{dims.lower()}.png"
      viz.plot_curve_panels(
        _panels(results, grids, kl_kinds, kl_keys, kl_labels),
        path,
        "mean KL(p(x) || training label marginal)",
        title=f"{dims}: distance to the optimal constant solution as the shift grows",
      )
      figures["kl"].append((path, f"Kang et al.'s measurement, {dims} models"))
  tv = {
    dims: {name: {"clean": r["tv"]["clean"], "noisy": r["tv"]["noisy"]} for name, r in res.items()}
    for dims, res in (("2D first-stage TV", out["models"]), ("3D first-stage TV", out["volumes"]))
    if res
  }
  if tv:
    figures["tv"] = fig_dir / "tv.png"
    viz.plot_grouped_bars(tv, figures["tv"], ylim=None)
  return figures


def accuracy_rows(results: dict, study) -> list[dict]:
  """One row per model: clean accuracy and the accuracy at the table's mu and sigma."""
  rows = []
  for name, r in results.items():
    row = {"model": name, "test accuracy": r["clean_accuracy"], "val accuracy": r["val_accuracy"]}
    row |= {f"mu={m:g}": value_at(study.mu_grid, r["brightness"], m) for m in study.table_mu}
    row |= {f"sigma={v:g}": value_at(study.sigma_grid, r["contrast"], v) for v in study.table_sigma}
    rows.append(row)
  return rows


def tv_rows(results: dict) -> list[dict]:
  return [
    {
      "model": name,
      "first stage": r["tv"]["stage"],
      "TV clean": r["tv"]["clean"],
      "TV noisy": r["tv"]["noisy"],
      "noisy / clean": r["tv"]["noisy"] / r["tv"]["clean"] if r["tv"]["clean"] else float("nan"),
      "train s": r["train_s"],
    }
    for name, r in results.items()
  ]


def kl_rows(results: dict, grids: dict) -> list[dict]:
  """One row per model: KL at the smallest and largest level of each shift."""
  rows = []
  for name, r in results.items():
    row = {"model": name}
    for kind in SHIFTS:
      levels = grids[f"kl_{kind}"]
      row[f"{kind} {levels[0]:g}"] = r["kl"][kind][0]
      row[f"{kind} {levels[-1]:g}"] = r["kl"][kind][-1]
    rows.append(row)
  return rows


def _findings(out: dict, study) -> str:
  """A paragraph of what the numbers say, for the models present."""
  models = out["models"]
  top = max(study.table_mu)
  parts = [
    f"{name}: {value_at(study.mu_grid, r['brightness'], top):.3f} at mu={top:g}, "
    f"{value_at(study.sigma_grid, r['contrast'], max(study.table_sigma)):.3f} at "
    f"sigma={max(study.table_sigma):g} (clean {r['clean_accuracy']:.3f})"
    for name, r in models.items()
  ]
  return "Test accuracy: " + "; ".join(parts) + "."


def write_report(config, workdir: pathlib.Path, out: dict, figures: dict) -> pathlib.Path:
  """DIR/report.html: findings, accuracy table, the authors' table, curves, KL, TV, filters."""
  s = config.study
  rep = viz.HtmlReport(workdir / "report.html", "Light study: a precortical front-end")
  data = SOURCE_DATASETS.get(config.data.source)
  rep.paragraph(
    f"2D data: {config.data.source} {tuple(config.data.shape)}"
    + ("" if data else " (real handwritten digits, but not MNIST: the authors' numbers below are")
    + ("" if data else " for MNIST and compare only in shape)")
    + f"; 3D data: {config.volumes.data.source} {tuple(config.volumes.data.shape)}. Study wall "
    f"time {out['wall_s'] / 60:.1f} min. Light changes act on intensities in [0, 1]: "
    "brightness x -> x - mu, contrast x -> (x - <x>) / sigma + <x>, nothing clipped."
  )
  if out["models"]:
    rep.paragraph(_findings(out, s))
    rep.section("Accuracy under light changes (2D, test split)")
    rep.table(accuracy_rows(out["models"], s))
  reference = data or "MNIST"
  rep.section(
    f"The authors' {reference} numbers",
    "Fioresi and Petkovic's test accuracies (LeNet, RetiLeNet, InstanceNorm-LeNet, "
    f"RetiLeNet-aug), on the full {reference} test set.",
  )
  rep.table([{"model": m, **row} for m, row in AUTHORS[reference].items()])
  if out["volumes"]:
    rep.section("Accuracy under exposure and contrast changes (3D volumes, test split)")
    rep.table(accuracy_rows(out["volumes"], s))
  for path, caption in figures["sweeps"]:
    rep.image(path, caption)
  rep.section(
    "Drift toward the label marginal (Kang et al.)",
    "Mean KL divergence of each model's predicted class distribution to the training label "
    "marginal (the optimal constant solution of cross-entropy) as each shift grows; Kang et al. "
    "find it falls toward 0 as inputs move out of distribution.",
  )
  rep.table(kl_rows({**out["models"], **out["volumes"]}, out["grids"]))
  for path, caption in figures["kl"]:
    rep.image(path, caption)
  rep.section(
    "Smoothness of the first stage (Chen et al.)",
    f"Total variation per position of the first trunk stage's maps, clean and with Gaussian "
    f"noise of std {s.tv_noise:g}; Chen et al. find adversarially trained CNNs smoother "
    "(compare lenet with lenet_pgd).",
  )
  rep.table(tv_rows({**out["models"], **out["volumes"]}))
  if figures["tv"] is not None:
    rep.image(figures["tv"], "First-stage total variation, clean vs noisy inputs")
  rep.section("Filters", "Red positive, blue negative; each filter's sum in its caption.")
  for name, paths in figures["filters"].items():
    # A learned front-end's three stages; elsewhere the first filters (c1, the fixed DoG).
    for path in paths if name.startswith("retina") else paths[:1]:
      rep.image(path, f"{name}: {path.stem.removeprefix('filters_')}")
  rep.pre(config.to_json_best_effort(indent=2), "Config")
  return rep.write()
