"""TensorBoard event files beside metrics.jsonl: the training scalars, and per evaluation the
confusion matrix and input-gradient figures as images; written without TensorFlow or torch."""

import io
import struct
import subprocess
import sys
from collections import defaultdict

import numpy as np
from conftest import ROOT, smoke_config
from PIL import Image

from bugnist_jax.training.optim import learning_rate_schedule


def _events(logdir) -> dict[str, dict[int, object]]:
  """{tag: {step: float or uint8 image [H, W, 3]}} from the event files under `logdir`
  (TFRecord framing: length, its CRC, the Event proto, its CRC)."""
  from tensorboardX.proto import event_pb2

  out = defaultdict(dict)
  for path in sorted(logdir.glob("events.out.tfevents.*")):
    data, i = path.read_bytes(), 0
    while i < len(data):
      (n,) = struct.unpack("<Q", data[i : i + 8])
      event = event_pb2.Event.FromString(data[i + 12 : i + 12 + n])
      i += 12 + n + 4
      for v in event.summary.value:
        if v.HasField("image"):
          out[v.tag][event.step] = np.asarray(Image.open(io.BytesIO(v.image.encoded_image_string)))
        else:
          out[v.tag][event.step] = v.simple_value
  return out


def test_training_writes_scalars_and_evaluation_images(trained_run):
  events = _events(trained_run / "tensorboard")
  train_steps = [2, 4, 6, 8, 9, 10, 12, 14, 16, 18]  # log_every_steps=2, evaluations at 9, 18
  for name in ("loss", "cross_entropy", "accuracy", "grad_norm", "learning_rate", "examples_per_s"):
    assert sorted(events[f"train/{name}"]) == train_steps, name
  assert all(v > 0 for v in events["train/examples_per_s"].values())
  schedule = learning_rate_schedule(smoke_config().train, steps_per_epoch=9)
  for step, rate in events["train/learning_rate"].items():
    assert abs(rate - float(schedule(step - 1))) < 1e-9, step  # the rate of the step logged
  for name in ("loss", "accuracy"):
    assert sorted(events[f"validation/{name}"]) == [9, 18]
  import json

  logged = [json.loads(ln) for ln in (trained_run / "metrics.jsonl").read_text().splitlines()]
  last = [r for r in logged if r["split"] == "validation"][-1]
  assert abs(events["validation/accuracy"][18] - last["val_accuracy"]) < 1e-6
  for tag in ("validation/confusion_matrix", "validation/gradient_0", "validation/gradient_1"):
    assert sorted(events[tag]) == [9, 18], tag
    image = events[tag][18]
    assert image.ndim == 3 and image.shape[2] == 3 and min(image.shape[:2]) > 200
    assert image.std() > 5  # a figure, not a blank canvas


def test_the_event_writer_does_not_import_torch(tmp_path):
  script = (
    "import sys; from bugnist_jax.training.tensorboard import TensorBoard; "
    f"b = TensorBoard({str(tmp_path)!r}); b.scalars(1, 'train', {{'loss': 1.0}}); b.close(); "
    "assert 'torch' not in sys.modules and 'tensorflow' not in sys.modules; "
    "import importlib.util; print(importlib.util.find_spec('torch') is not None)"
  )
  out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
  assert out.returncode == 0, out.stderr[-2000:]
  assert _events(tmp_path / "tensorboard")["train/loss"] == {1: 1.0}
