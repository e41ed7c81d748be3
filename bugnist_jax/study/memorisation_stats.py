"""The numbers of the memorisation study for one trained run, through the model contract only.

Accuracies on the items as trained (their training labels), on the originals with their true
labels and on the test split; statistics of the last spatial stage's activations on test
images; the high-frequency share of the first spatial stage's conv filters and of feature
visualisations. Nothing here knows a model family: the last conv layer is
`model.spatial_layers()[-1]`, the first-layer filters the first `kernel` parameter of
`model.spatial_layers()[0]` with a spatial shape.
"""

import jax
import numpy as np
from flax import nnx

from bugnist_jax import compile, featurevis
from bugnist_jax.data import datasets, pipeline
from bugnist_jax.models import StagedModel
from bugnist_jax.models.adapters import stage_fn
from bugnist_jax.runs import Run
from bugnist_jax.training import sharding
from bugnist_jax.training.loop import evaluate
from bugnist_jax.training.steps import make_eval_step


def first_kernel(model: StagedModel) -> np.ndarray:
  """The conv kernel [*k, Cin, Cout] of the first spatial stage (its first parameter named
  `kernel` with len(input_shape) + 2 axes: `nnx.Conv`'s layout)."""
  name = model.spatial_layers()[0]
  ndim = len(model.input_shape) + 2
  for path, value in nnx.to_flat_state(nnx.state(model.stage(name), nnx.Param)):
    kernel = np.asarray(value[...])
    if path[-1] == "kernel" and kernel.ndim == ndim:
      return kernel
  raise ValueError(f"stage {name!r}: no conv kernel with {ndim} axes")


def _evaluator(run: Run, batch_size: int):
  """source -> (accuracy, per-item correctness [N]) with its labels; one compiled step."""
  mesh = sharding.data_mesh()
  graphdef, state = nnx.split((run.model, None))
  step, state = make_eval_step(graphdef, run.normalization), sharding.replicate(state, mesh)

  def accuracy(source) -> tuple[float, np.ndarray]:
    out = evaluate(step, state, source, mesh, batch_size, run.transforms)
    correct = out["logits"].argmax(-1) == out["labels"]
    return float(correct.mean()), correct

  return accuracy


def accuracies(run: Run) -> dict[str, float]:
  """'fit': on the training items with the labels they were trained on (the regime's source);
  'train': on the original training items, true labels; 'test'; with noisy copies also
  'originals_fit' and 'copies_fit' (the random labels of the copies)."""
  accuracy = _evaluator(run, run.config.eval.batch_size)
  train = run.split("train")
  trained = datasets.training_source(run.config.data, train, len(run.class_names))
  out = {}
  out["fit"], correct = accuracy(trained)
  out["train"] = out["fit"] if trained is train else accuracy(train)[0]
  if hasattr(trained, "is_copy"):
    copies = trained.is_copy()
    out["originals_fit"] = float(correct[~copies].mean())
    out["copies_fit"] = float(correct[copies].mean())
  out["test"] = accuracy(run.split("test"))[0]
  return out


def activation_statistics(run: Run, layer: str, max_items: int, batch_size: int) -> dict:
  """`summarize_activations` of `layer`'s activations on up to `max_items` test images."""
  f = compile.jit(lambda images: stage_fn(run.model, None, layer)(run.normalization(images)))
  test = run.split("test")
  subset = [test[i] for i in range(min(max_items, len(test)))]
  acts = []
  for batch in pipeline.eval_batches(subset, batch_size=batch_size, transforms=run.transforms):
    acts.append(np.asarray(jax.device_get(f(batch["image"])))[batch["valid"]])
  return {"layer": layer, **summarize_activations(np.concatenate(acts))}


def summarize_activations(a: np.ndarray) -> dict:
  """Statistics of activations `a` [N, *S', C'] (N images): mean, std, share of zeros, share
  of channels never active on any image (dead), mean per-image maximum, and the share of the
  summed channel means in the strongest 10 % of channels (how few channels carry it)."""
  a = np.asarray(a, np.float64)
  n = a.shape[0]
  per_channel = a.reshape(-1, a.shape[-1])
  means = np.sort(per_channel.mean(0))[::-1]
  top = max(1, int(round(0.1 * len(means))))
  total = means.clip(0).sum()
  return {
    "items": n,
    "mean": float(a.mean()),
    "std": float(a.std()),
    "zero_share": float(np.mean(a == 0)),
    "dead_channels": float(np.mean(per_channel.max(0) <= 0)),
    "max_per_image": float(a.reshape(n, -1).max(-1).mean()),
    "top10pc_channel_share": float(means[:top].clip(0).sum() / total) if total > 0 else 0.0,
  }


def spectral_shares(run: Run, images: np.ndarray, test_items: int) -> dict[str, float]:
  """Mean share of spectral energy above half Nyquist: of feature visualisations `images`
  [N, *S, C] (model-input space), of the first-layer filters, and of test images for scale."""
  axes = tuple(range(1, images.ndim - 1))
  test = run.split("test")
  n = min(test_items, len(test))
  data = run.inputs(np.stack([datasets.apply(run.transforms, test[i])["image"] for i in range(n)]))
  return {
    "featurevis": float(np.nanmean(featurevis.high_frequency_share(images, axes))),
    "filters": float(np.nanmean(featurevis.kernel_high_frequency_share(first_kernel(run.model)))),
    "test_images": float(np.nanmean(featurevis.high_frequency_share(np.asarray(data), axes))),
  }
