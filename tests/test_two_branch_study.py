"""The two-branch study end to end on its `:smoke` config (one run per part), and its pieces:
the transfer's parameter copy, the split sizes, the shortcut patch, bad config fields."""

import json
import re

import numpy as np
import pytest
from flax import nnx
from two_branch_study import get_config  # configs/ is on sys.path (conftest.py)

from bugnist_jax.config_defaults import with_overrides
from bugnist_jax.data.synthetic2d import PATCH_COLORS, Synthetic2DSource
from bugnist_jax.errors import UserError
from bugnist_jax.models import build_model
from bugnist_jax.study import two_branch


def test_smoke_study_writes_report_figures_and_numbers(tmp_path):
  config = get_config("smoke")
  out = two_branch.run_two_branch(config, tmp_path)
  saved = json.loads((tmp_path / "results.json").read_text())
  results = saved["results"]
  assert set(results) == {"sizes", "transfer", "shortcut", "class_names"}
  mask_run = results["sizes"]["2"]["mask"]
  assert set(mask_run["methods"]) == {"learned", "grad_cam"}  # the learned map beside the others
  for metric in ("pointing_game", "energy_pointing_game", "iou", "relevance_mass"):
    entry = mask_run["methods"]["learned"][metric]
    assert 0 <= entry["mean"] <= 1 and len(entry["per_class"]) == 5
  assert set(results["transfer"]) == {"pretrained_mask"}
  assert "learned" in results["transfer"]["pretrained_mask"]["methods"]  # the branch came along
  plain = results["shortcut"]["plain"]
  assert "learned" not in plain["methods"] and 0 <= plain["decoy_accuracy"] <= 1
  assert "on_shortcut" in plain["methods"]["grad_cam"]
  srcs = re.findall(r'<img src="([^"]+)"', (tmp_path / "report.html").read_text())
  assert "figures/maps_sizes_n2_mask.png" in srcs
  assert all((tmp_path / s).is_file() for s in srcs)
  assert out["wall_s"] > 0


def test_transfer_copies_the_trunk_and_branch_but_not_other_logits():
  config = with_overrides(get_config("smoke"), **{"saliency_branch.decoder": "unet"})
  source = build_model(config, (32, 32, 3), 3, rngs=nnx.Rngs(1))
  target = build_model(config, (32, 32, 3), 2, rngs=nnx.Rngs(2))
  two_branch.copy_matching_params(source)(target)
  np.testing.assert_array_equal(target.conv1.conv.kernel[...], source.conv1.conv.kernel[...])
  np.testing.assert_array_equal(target.saliency.head.kernel[...], source.saliency.head.kernel[...])
  assert target.logits.linear.kernel.shape == (8, 2)  # another class count: kept as built


def test_split_sizes_and_the_shortcut_patch():
  config = get_config("smoke")
  over = two_branch.data_overrides(config, 7, ("bonsai", "sunflower"))
  assert over["data.num_examples"] == (7 + 2 * 2) * 2
  assert over["data.split_fractions"][0] * (7 + 4) == pytest.approx(7)
  src = Synthetic2DSource(6, (32, 32), 0, ("menorah", "scorpion"), shortcut_patch=1.0)
  assert list(src.labels()) == [0, 1, 0, 1, 0, 1]
  for i in range(4):
    r = src[i]
    patch = r["shortcut_mask"] > 0
    assert patch.sum() == 16 and not (patch & (r["object_mask"] > 0)).any()
    color = r["image"][patch].mean(0) / 255
    assert np.abs(color - PATCH_COLORS[int(r["label"])]).max() < 0.15  # the label's colour


@pytest.mark.parametrize(
  "field,value,message",
  [
    # validation.check_config names them first (RULES), before any work
    ("two_branch.parts", ("sizes", "zoo"), "config.two_branch.parts: 'zoo' is not one of"),
    ("two_branch.conditions", ("lasso",), "config.two_branch.conditions: 'lasso' is not one of"),
    ("two_branch.transfer_conditions", ("x",), "config.two_branch.transfer_conditions"),
  ],
)
def test_bad_study_fields_are_named(tmp_path, field, value, message):
  parts = {"two_branch.conditions": ("sizes",), "two_branch.transfer_conditions": ("transfer",)}
  overrides = {"two_branch.parts": parts.get(field, ("sizes",)), field: value}
  with pytest.raises(UserError, match=message):
    two_branch.run_two_branch(with_overrides(get_config("smoke"), **overrides), tmp_path)
