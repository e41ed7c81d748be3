"""End-to-end tests of the shortcut study and the sanity study on the tiny `:smoke` config."""

import json
import math
import pathlib

import jax.numpy as jnp
import numpy as np
import pytest
from shortcut_study import get_config  # configs/ is on sys.path (conftest.py)

from bugnist_jax.data.sources import ShuffledLabels
from bugnist_jax.errors import UserError
from bugnist_jax.study import sanity, shortcut

pytestmark = pytest.mark.xdist_group("shortcut_study")  # one worker runs the smoke study


@pytest.fixture(scope="module")
def study(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("shortcut")
  config = get_config("smoke")
  return config, workdir, shortcut.run_study(config, workdir)


def _imgs_exist(report: pathlib.Path) -> list[str]:
  import re

  srcs = re.findall(r'<img src="([^"]+)"', report.read_text())
  assert srcs and all((report.parent / s).is_file() for s in srcs), srcs
  return srcs


def test_shortcut_study_writes_report_figures_and_numbers(study):
  config, workdir, out = study
  saved = json.loads((workdir / "results.json").read_text())
  assert list(saved["results"]) == list(config.study.conditions)
  srcs = _imgs_exist(workdir / "report.html")
  assert "figures/shortcut_bars.png" in srcs
  assert {f"figures/maps_{m}.png" for m in config.study.methods} <= set(srcs)
  assert {f"{c}/eval/confusion_test.png" for c in config.study.conditions} <= set(srcs)
  for cond, r in saved["results"].items():
    assert (workdir / cond / "checkpoints").is_dir()  # a normal, resumable run
    assert 0.0 <= r["accuracy"] <= 1.0
    assert list(r["methods"]) == list(config.study.methods)
    for e in r["methods"].values():
      for metric in ("shortcut_score", "pointing_game", "relevance_mass", "energy_pointing_game"):
        mean, per_class = e[metric]["mean"], e[metric]["per_class"]
        assert math.isnan(mean) or 0.0 <= mean <= 1.0
        assert len(per_class) == 12
      # Shares of one map: cotton and bug together take at most all of it.
      assert e["on_cotton"]["mean"] + e["on_bug"]["mean"] <= 1.0 + 1e-6
      assert "faithfulness" not in e  # num_faithfulness = 0 in the smoke config
  assert "packing_removal" in saved["results"]["cotton_removed"]
  assert "packing_removal" not in saved["results"]["raw"]
  cfg = json.loads((workdir / "right_reasons" / "config.json").read_text())
  assert cfg["train"]["extra_loss"] == "right_reasons" and not cfg["data"]["remove_packing"]


def test_shortcut_score_of_known_maps():
  bug = np.zeros((2, 4, 4, 4), np.uint8)
  cotton = np.zeros_like(bug)
  bug[:, 1:3, 1:3, 1:3] = 1
  cotton[:, 0] = 1
  maps = np.concatenate([cotton[:1] * 3.0, bug[1:] * 1.0])  # 0 looks at the cotton, 1 at the bug
  s = shortcut.attribution_metrics(maps, bug, cotton)
  np.testing.assert_allclose(s["shortcut_score"], [1.0, 0.0])
  np.testing.assert_allclose(s["pointing_game"], [0.0, 1.0])
  np.testing.assert_allclose(s["points_at_cotton"], [1.0, 0.0])


def test_faithfulness_aucs_of_a_linear_model():
  block = np.zeros((2, 6, 6, 6, 1), np.float32)
  block[:, 2:4, 2:4, 2:4] = 1.0  # the evidence, and where the map points

  def f(x):  # a linear model whose evidence is the block
    score = 10.0 * (x * block[0]).sum((1, 2, 3, 4)) / 8.0 - 5.0
    return jnp.stack([score, jnp.zeros_like(score)], -1)

  out = shortcut.faithfulness(f, block, block[..., 0], np.zeros(2, int), steps=4)
  # Removing the evidence first kills the score; revealing it first restores it.
  assert 0.0 <= out["deletion_auc"] < 0.5 < out["insertion_auc"] <= 1.0, out


def test_unknown_condition_is_a_user_error():
  with pytest.raises(UserError, match="config.study.conditions"):
    shortcut.condition_config(get_config("smoke"), "no_such_condition")


def test_shuffled_labels_are_a_fixed_permutation():
  labels = np.arange(48) % 12
  source = [{"image": np.zeros((1,)), "label": np.int32(y)} for y in labels]

  class Src(list):
    def labels(self):
      return labels

  a, b = ShuffledLabels(Src(source), 3), ShuffledLabels(Src(source), 3)
  got = np.array([a[i]["label"] for i in range(48)])
  assert np.array_equal(got, [b[i]["label"] for i in range(48)])  # seeded: same every time
  assert np.array_equal(np.bincount(got), np.bincount(labels))  # class balance kept
  assert np.mean(got != labels) > 0.5 and np.array_equal(a.labels(), got)


def test_sanity_study_on_the_smoke_run(study, tmp_path):
  config, workdir, _ = study
  out = sanity.run_sanity(config, tmp_path, workdir / "raw")
  saved = json.loads((tmp_path / "results.json").read_text())
  assert saved["layers"][0] == "original" and saved["layers"][1] == "logits"
  assert set(saved["cascading"]) == set(config.sanity.methods)
  firsts = []
  for r in saved["cascading"].values():
    assert len(r["spearman"]) == len(out["layers"])
    firsts += list(np.asarray(r["spearman"][0], float))  # unrandomised maps vs themselves
  # 1 everywhere, except nan for a constant map (a dead CAM of the tiny smoke model).
  assert np.isfinite(firsts).sum() >= 2
  np.testing.assert_allclose(np.asarray(firsts)[np.isfinite(firsts)], 1.0, atol=1e-5)
  rows = saved["data_randomization"]["rows"]
  assert [r["method"] for r in rows] == list(config.sanity.methods)
  assert all(-1.0 <= r["spearman"] <= 1.0 for r in rows)
  srcs = _imgs_exist(tmp_path / "report.html")
  assert "figures/cascading_randomization.png" in srcs
