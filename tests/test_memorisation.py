"""The memorisation study (seed 004): the `smoke,2d` study end to end (three regimes, numbers,
figures, report), its analysis of a 3D run, the activation statistics, the config variants and
the one-line errors of a bad family."""

import json
import re
import shutil

import numpy as np
import pytest
from memorisation_study import get_config  # configs/ is on sys.path (conftest.py)

from bugnist_jax.errors import UserError
from bugnist_jax.models import MODELS
from bugnist_jax.study import memorisation
from bugnist_jax.study import memorisation_stats as stats

pytestmark = pytest.mark.xdist_group("memorisation")  # one worker runs the smoke study


@pytest.fixture(scope="module")
def study(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("memorisation")
  config = get_config("smoke,2d")
  return config, workdir, memorisation.run_study(config, workdir)


def _shares_ok(shares: dict) -> bool:
  return set(shares) == {"featurevis", "filters", "test_images"} and all(
    0.0 <= v <= 1.0 for v in shares.values()
  )


def test_the_smoke_study_trains_every_regime_and_writes_numbers_figures_and_report(study):
  config, workdir, out = study
  saved = json.loads((workdir / "results.json").read_text())
  assert saved["results"] == json.loads(json.dumps(out["results"]))
  regimes = saved["results"]["cnn2d"]
  assert list(saved["results"]) == ["cnn2d"] and list(regimes) == list(config.memorisation.regimes)
  html = (workdir / "report.html").read_text()
  srcs = re.findall(r'<img src="([^"]+)"', html)
  want = {"figures/accuracy.png", "figures/high_frequency.png", "figures/featurevis_cnn2d.png"}
  assert want <= set(srcs) and all((workdir / s).is_file() for s in srcs)
  assert "shuffled_labels" in html and "noisy_copies" in html and "Caltech101 0.78" in html
  for regime, r in regimes.items():
    run_dir = workdir / "cnn2d" / regime
    trained = json.loads((run_dir / "config.json").read_text())
    assert trained["data"]["regime"] == regime and (run_dir / "checkpoints").is_dir()
    assert (trained["data"]["augment"] == "none") == (regime != "standard")
    assert (trained["train"]["weight_decay"] > 0) == (regime == "standard")
    assert all(0.0 <= v <= 1.0 for v in r["accuracy"].values())
    assert r["activations"]["layer"] == "pool2" and r["activations"]["items"] > 0  # last spatial
    assert 0.0 <= r["activations"]["zero_share"] <= 1.0
    fv = r["featurevis"]
    assert fv["channels"] == [0, 1] and not fv["cached"]
    assert (run_dir / "featurevis" / f"{fv['layer']}.npz").is_file()  # the viewer's cache
    assert _shares_ok(r["high_frequency_share"])
  assert regimes["standard"]["accuracy"]["fit"] == regimes["standard"]["accuracy"]["train"]
  # Noisy copies: 'fit' is over the originals once plus 2 copies of each, so it is their mean.
  noisy = regimes["noisy_copies"]["accuracy"]
  assert noisy["fit"] == pytest.approx((noisy["originals_fit"] + 2 * noisy["copies_fit"]) / 3)
  assert "copies_fit" not in regimes["shuffled_labels"]["accuracy"]


def test_a_3d_run_is_analysed_through_the_contract_and_drawn_as_mips(trained_run, tmp_path):
  run_dir = shutil.copytree(trained_run, tmp_path / "run")  # its caches reach no other test
  config = get_config("smoke,3d")
  result, shown = memorisation.analyse_run(config, "bugcnn3d", run_dir)
  assert result["activations"]["layer"] == "block4" and result["featurevis"]["layer"] == "block1"
  assert result["accuracy"]["fit"] == result["accuracy"]["train"]  # a standard run
  assert _shares_ok(result["high_frequency_share"])
  assert shown["display"].ndim == 5  # [channels, Z, Y, X, C] volumes
  figures = memorisation.write_figures(
    {"bugcnn3d": {"standard": result}}, {"bugcnn3d": {"standard": shown}}, tmp_path / "figures"
  )
  assert all(p.is_file() for p in figures.values()) and "featurevis_bugcnn3d" in figures


def test_activation_statistics_of_known_activations():
  a = np.zeros((2, 3, 3, 10))  # 2 images, 3x3 positions, 10 channels
  a[0, ..., 0] = 4.0  # channel 0: 4 on image 0, 0 on image 1
  a[:, 1, 1, 1:9] = 1.0  # channels 1-8 active at one position; channel 9 never (dead)
  s = stats.summarize_activations(a)
  assert s["items"] == 2 and s["dead_channels"] == pytest.approx(0.1)
  assert s["zero_share"] == pytest.approx(1 - (9 + 16) / a.size)
  assert s["max_per_image"] == pytest.approx((4 + 1) / 2)
  # channel means: 2 (channel 0), 1/9 (1-8), 0: the top 10 % (one channel) holds 2 / (2 + 8/9)
  assert s["top10pc_channel_share"] == pytest.approx(2 / (2 + 8 / 9))


def test_variants_pick_families_and_the_covid_models_keep_the_epochs_per_regime():
  assert list(get_config("").memorisation.families) == ["bugcnn3d", "cnn2d"]
  assert list(get_config("smoke,2d").memorisation.families) == ["cnn2d"]
  paper = get_config("paper,covid").memorisation
  assert set(paper.families) == {"covidresnet", "coviddensenet"}
  for name, fam in paper.families.items():
    assert fam.model.to_dict() == {"name": name[5:], "variant": "covid"}
    assert dict(fam.epochs) == {"standard": 200, "shuffled_labels": 250, "noisy_copies": 1000}
    assert tuple(fam.data.shape) == (150, 175)
  with pytest.raises(ValueError, match="exclude each other"):
    get_config("3d,covid")


def test_the_covid_variant_needs_the_resnet_model_and_says_so_in_one_line():
  config = get_config("covid,smoke")
  if "resnet" in MODELS and "densenet" in MODELS:  # issue 11 landed: a normal config
    memorisation.validate(config)
    c = memorisation.run_config(config, "covidresnet", "noisy_copies")
    assert c.model.variant == "covid" and c.data.regime == "noisy_copies"
  else:
    with pytest.raises(UserError, match=r"families\.covid\w+\.model\.name: unknown model"):
      memorisation.validate(config)


@pytest.mark.parametrize(
  "where, value, message",
  [
    ("families.cnn2d.model.archx", 3, r"families\.cnn2d\.model\.archx: not a field of config\.m"),
    ("families.cnn2d.data.shapes", 3, r"cnn2d\.data\.shapes: not a field of config\.data"),
    ("regimes", ("standard", "memorise"), r"regimes: unknown 'memorise'"),
    ("families.cnn2d.model.arch", 7, r"families\.cnn2d\.model: arch: unknown 7"),
    ("families.cnn2d.featurevis_layer", "conv9", r"featurevis_layer: no spatial stage 'conv9'"),
  ],
)
def test_a_bad_family_or_regime_is_one_line_before_anything_trains(where, value, message, tmp_path):
  config = get_config("smoke,2d")
  *path, leaf = where.split(".")
  node = config.memorisation
  for p in path:
    node = node[p]
  node[leaf] = value
  with pytest.raises(UserError, match=message):
    memorisation.run_study(config, tmp_path / "study")
  assert not (tmp_path / "study").exists()
