"""End-to-end test of the light study on its `:smoke` config, and its model names."""

import json
import re
import types

import numpy as np
import pytest
from light_study import get_config  # configs/ is on sys.path (conftest.py)

from bugnist_jax.commands import light_study as command
from bugnist_jax.config_defaults import base
from bugnist_jax.errors import UserError
from bugnist_jax.study import light
from bugnist_jax.study.light_measures import SHIFTS, kl_to_marginal, total_variation

pytestmark = pytest.mark.xdist_group("light_study")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("light")
  config = get_config("smoke")
  return config, workdir, light.run_light_study(config, workdir)


def test_smoke_study_writes_report_and_results_with_the_expected_keys(study):
  config, workdir, out = study
  saved = json.loads((workdir / "results.json").read_text())
  assert set(saved) == {"wall_s", "data", "grids", "models", "volumes", "authors"}
  assert list(saved["models"]) == list(config.study.models)
  assert list(saved["volumes"]) == list(config.study.volume_models)
  s = config.study
  for r in [*saved["models"].values(), *saved["volumes"].values()]:
    assert 0 <= r["clean_accuracy"] <= 1 and r["test_items"] > 0
    assert len(r["brightness"]) == len(s.mu_grid) and len(r["contrast"]) == len(s.sigma_grid)
    for kind in SHIFTS:
      assert len(r["kl"][kind]) == len(s[f"kl_{kind}"]) and min(r["kl"][kind]) >= 0
    assert r["tv"]["clean"] > 0 and r["tv"]["noisy"] > 0
  assert saved["models"]["retina_lenet_in_aug_pgd"]["tv"]["stage"] == "bipolar"
  assert saved["volumes"]["dog_bugcnn3d"]["tv"]["stage"] == "retina"
  assert saved["authors"]["MNIST"]["lenet_in"]["mu=1"] == 0.99
  report = (workdir / "report.html").read_text()
  srcs = re.findall(r'<img src="([^"]+)"', report)
  assert all((workdir / src).is_file() for src in srcs)
  assert {"figures/sweep_0.png", "figures/kl_2d.png", "figures/kl_3d.png", "figures/tv.png"} <= set(
    srcs
  )
  assert "retina_lenet_in_aug_pgd/inside/filters/filters_lgn.png" in srcs
  assert "trained with light augmentation" in report  # the run is grouped with the augmented
  assert "not MNIST" in report


def test_the_fixed_front_end_keeps_its_accuracy_over_the_brightness_sweep(study):
  _, _, out = study
  r = out["volumes"]["dog_bugcnn3d"]  # the DoG of a constant is zero
  assert set(r["brightness"]) == {r["clean_accuracy"]}


def test_each_model_trained_with_its_own_config(study):
  _, workdir, _ = study
  cfg = lambda name: json.loads((workdir / name / "config.json").read_text())
  two_d = cfg("retina_lenet_in_aug_pgd")
  assert two_d["data"]["light_augment"] is True and two_d["model"]["norm"] == "instance"
  assert two_d["model"]["frontend_variant"] == "learned" and "study" not in two_d
  assert two_d["train"]["adversarial"]["norm"] == "l2"
  assert two_d["train"]["adversarial"]["steps"] == 2  # the smoke variant's study.pgd
  volume = json.loads((workdir / "volumes" / "dog_bugcnn3d" / "config.json").read_text())
  assert volume["model"]["name"] == "bugcnn3d" and volume["model"]["frontend"] == "precortical"
  assert volume["model"]["frontend_variant"] == "fixed"


def test_model_names_parse_into_overrides():
  config = get_config()
  overrides = lambda name, base_config=config: light.model_overrides(
    name, base_config, config.study
  )
  assert overrides("lenet") == {}
  assert overrides("retina_lenet_in_aug") == {
    "model.frontend": "precortical",
    "model.frontend_variant": "learned",
    "model.norm": "instance",
    "data.light_augment": True,
  }
  assert overrides("lenet_pgd")["train.adversarial.norm"] == "l2"
  assert overrides("dog_bugcnn3d", config.volumes)["model.frontend_variant"] == "fixed"
  for name, message in [
    ("resnet", "expected"),
    ("lenet_gn", "unknown part 'gn'"),
    ("bugcnn3d", "this list trains lenet5, not bugcnn3d"),
  ]:
    with pytest.raises(UserError, match=f"config.study.models: '{name}': {message}"):
      overrides(name)
  with pytest.raises(UserError, match="unknown part 'bn'"):  # BugCNN3D has no `norm`
    overrides("bugcnn3d_bn", config.volumes)


def test_measures_against_their_formulas():
  marginal = np.array([0.5, 0.5])
  assert kl_to_marginal(np.array([[0.5, 0.5]]), marginal) == pytest.approx(0.0)
  assert kl_to_marginal(np.array([[1.0, 0.0]]), marginal) == pytest.approx(np.log(2), rel=1e-6)
  maps = np.zeros((1, 3, 4, 2))
  maps[0, :, 2:, 0] = 1.0  # one vertical edge in channel 0: mean |dx| = 1/3 over 3x3 pairs
  assert total_variation(maps) == pytest.approx((0 + 1 / 3) / 2)


def test_the_command_needs_the_study_sections(tmp_path):
  flags = types.SimpleNamespace(config=base("lenet5"), workdir=str(tmp_path))
  with pytest.raises(UserError, match="--config: needs a `study` section"):
    command.main(flags)


@pytest.mark.parametrize(
  "where, value, message",
  [
    ("study.volume_models", ("bugcnn3d_xyz",), r"config\.study\.volume_models: 'bugcnn3d_xyz'"),
    ("volumes.train.batch_size", 0, r"config\.train\.batch_size: 0 must be >= 1"),
  ],
)
def test_a_bad_3d_model_is_one_line_before_the_2d_models_train(where, value, message, tmp_path):
  config = get_config("smoke")
  *path, leaf = where.split(".")
  node = config
  for p in path:
    node = node[p]
  node[leaf] = value
  with pytest.raises(UserError, match=message):
    light.run_light_study(config, tmp_path / "study")
  assert not any(p.is_dir() for p in (tmp_path / "study").iterdir())  # nothing trained
