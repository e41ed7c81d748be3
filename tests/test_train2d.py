"""End to end on the embedded 2D data: train arch 2, evaluate three splits, look inside."""

import importlib.util
import json
import pathlib

import pytest

from bugnist_jax.evaluation import evaluate_run
from bugnist_jax.inspection import LookInsideRequest, look_inside
from bugnist_jax.training.loop import train_and_evaluate

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "configs"


def _config(name: str, arg: str):
  """get_config(arg) of configs/<name>, loaded by path as --config=configs/<name>:<arg> does."""
  spec = importlib.util.spec_from_file_location(name[:-3], CONFIGS / name)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config(arg)
  config.lock()
  return config


@pytest.mark.parametrize("arg,arch", [("arch1", 1), ("arch2", 2), ("arch3", 3)])
def test_config_variants(arg, arch):
  c = _config("caltech2d.py", arg)
  assert c.model.arch == arch and c.data.shape == (224, 224) and c.data.augment == "hflip"
  assert c.data.source == "synthetic2d" and len(c.data.classes) == 5
  vgg = _config("vgg19_transfer.py", "smoke")
  assert vgg.model.name == "vgg19" and vgg.model.weights == "" and vgg.train.freeze


def test_train_evaluate_look_inside(tmp_path):
  config = _config("caltech2d.py", "smoke")
  train_and_evaluate(config, tmp_path)
  records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  losses = [r["loss"] for r in records if r["split"] == "train"]
  assert sum(losses[-2:]) / 2 < sum(losses[:2]) / 2 - 0.15  # it learns

  reports = evaluate_run(tmp_path, ("train", "validation", "test"))
  assert reports["train"]["accuracy"] > 0.3  # chance is 0.2
  for split in ("train", "validation", "test"):
    assert (tmp_path / "eval" / f"confusion_{split}.png").stat().st_size > 1000

  paths = look_inside(tmp_path, LookInsideRequest(layer="conv2", channel=3, top_k=3))
  names = {p.relative_to(tmp_path / "inside").as_posix() for p in paths}
  assert {
    "features/features_conv1.png",
    "features/features_conv3.png",
    "top_conv2_c3.png",
    "top_patches_per_class.png",
    "saliency_sunflower.png",
  } <= names
  assert all(p.stat().st_size > 1000 for p in paths)
