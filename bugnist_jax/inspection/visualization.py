"""Feature visualisations of a run's stage, cached in its workdir, with each channel's top patch.

`stage_visualizations(run, layer, channels, options)` optimises one image per channel
(`bugnist_jax.featurevis`) of the run's eval-mode model cut at `layer`, in model-input space,
images kept inside the valid input range (`run.normalization` of 0 and 1) and, for RGB, in the
training images' decorrelated colour space. `write_visualizations` (`python -m
bugnist_jax.featurevis`) draws them beside each channel's top activating patch of a split.

Cache (the format the viewer reads; one file pair per stage, overwritten by new settings):

  W/featurevis/<stage>.npz
    images      float32 [N, *spatial, C]  the visualisations in model-input space
    display     uint8   [N, *spatial, C]  `run.normalization.to_uint8(images)` (inverse of the
                                          run's normalisation, clipped to 0..255)
    channels    int32   [N]               the channel of each image
    activation  float32 [N]               the objective reached (e.g. mean activation of the
                                          channel) at the final image, without transforms
  W/featurevis/<stage>.json
    the settings: `VisOptions` fields (objective, parameterization, steps, seed, transforms,
    ...), the resolved transforms (`transform_settings`), layer, channels, input_shape,
    `step` (the checkpoint), `split` (with init='image'), and `date` (ISO, UTC).

A request whose settings (everything but the date) equal the JSON's loads the npz instead of
optimising; any difference recomputes and overwrites both files.
"""

import dataclasses
import datetime
import json
import pathlib
from collections.abc import Sequence

import jax
import numpy as np

from bugnist_jax import compile
from bugnist_jax import featurevis as fv
from bugnist_jax.errors import UserError
from bugnist_jax.models.adapters import stage_fn
from bugnist_jax.options import option
from bugnist_jax.runs import Run

CACHE = "featurevis"


@dataclasses.dataclass(frozen=True)
class VisOptions:
  """How the images are optimised (`bugnist_jax.featurevis.visualize`)."""

  objective: str = option(
    "channel", "channel (spatial mean), neuron (centre position) or class (a logit).",
    choices=fv.OBJECTIVES,
  )  # fmt: skip
  parameterization: str = option("fourier", "pixel or fourier.", choices=fv.PARAMETERIZATIONS)
  steps: int = option(256, "Optimisation steps.", min=1)
  learning_rate: float = option(0.05, "Step size.", above=0.0)
  optimizer: str = option(
    "adam", "adam, or normalized (DeepVisionVR's RMS-normalised step).", choices=fv.OPTIMIZERS
  )
  transforms: str = option(
    "default", "default (2D: roll 8, scale 5%, rotate 10 deg; 3D: roll 4, flips) or none.",
    choices=("default", "none"),
  )  # fmt: skip
  blur_sigma: float = option(0.0, "Gaussian blur of the image, in pixels (0: none).", min=0.0)
  blur_every: int = option(4, "Blur every this many steps.", min=1)
  l2: float = option(0.0, "Weight of the mean-square penalty.", min=0.0)
  tv: float = option(0.0, "Weight of the total-variation penalty.", min=0.0)
  decorrelate: bool = option(True, "RGB: optimise in the training images' decorrelated colour.")
  init: str = option(
    "noise", "noise, or image (start from the first item of --split, as DeepVisionVR does).",
    choices=("noise", "image"),
  )  # fmt: skip
  init_scale: float = option(
    0.1, "Std of the random start (larger: fewer channels stuck at a start where they are 0).",
    min=0.0,
  )  # fmt: skip
  seed: int = option(0, "Random seed.", min=0)
  batch_size: int = option(16, "Channels optimised at once (memory; same result).", min=1)


@dataclasses.dataclass(frozen=True)
class Visualizations:
  """One stage's visualisations (the cache's arrays), and whether they came from the cache."""

  images: np.ndarray  # float32 [N, *spatial, C]
  display: np.ndarray  # uint8 [N, *spatial, C]
  channels: np.ndarray  # int32 [N]
  activation: np.ndarray  # float32 [N]
  settings: dict
  cached: bool


def _transforms(options: VisOptions, ndim: int) -> fv.Transforms:
  """The transforms `options.transforms` means for images with `ndim` spatial axes."""
  return fv.default_transforms(ndim) if options.transforms == "default" else fv.Transforms()


def transform_settings(options: VisOptions, ndim: int) -> dict:
  """`_transforms` as the cache's JSON holds them."""
  t = _transforms(options, ndim)
  return {**dataclasses.asdict(t), "flip_axes": list(t.flip_axes)}


def cache_paths(workdir, layer: str) -> tuple[pathlib.Path, pathlib.Path]:
  """(npz, json) of `layer`'s cache in the run's workdir."""
  base = pathlib.Path(workdir) / CACHE / layer
  return base.with_suffix(".npz"), base.with_suffix(".json")


def _settings(run: Run, layer: str, channels: np.ndarray, options: VisOptions, split: str) -> dict:
  shape = tuple(run.info.image_shape)
  out = dataclasses.asdict(options) | {
    "transforms_resolved": transform_settings(options, len(shape) - 1),
    "layer": layer,
    "channels": channels.tolist(),
    "input_shape": list(shape),
    "step": int(run.step),
  }
  if options.init == "image":
    out["split"] = split
  return out


def _load(workdir, layer: str, settings: dict) -> Visualizations | None:
  npz, meta = cache_paths(workdir, layer)
  if not (npz.exists() and meta.exists()):
    return None
  saved = json.loads(meta.read_text())
  saved.pop("date", None)
  if saved != json.loads(json.dumps(settings)):
    return None
  with np.load(npz) as d:
    arrays = {k: d[k] for k in ("images", "display", "channels", "activation")}
  return Visualizations(**arrays, settings=saved, cached=True)


def _save(workdir, layer: str, vis: Visualizations) -> None:
  npz, meta = cache_paths(workdir, layer)
  npz.parent.mkdir(parents=True, exist_ok=True)
  arrays = {k: getattr(vis, k) for k in ("images", "display", "channels", "activation")}
  np.savez_compressed(npz, **arrays)
  date = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
  meta.write_text(json.dumps({**vis.settings, "date": date}, indent=2))


def _num_channels(run: Run, layer: str) -> int:
  x = jax.ShapeDtypeStruct((1, *run.info.image_shape), np.float32)
  return int(jax.eval_shape(stage_fn(run.model, None, layer), x).shape[-1])


def check_channels(run: Run, layer: str, channels: Sequence[int], max_channels: int) -> np.ndarray:
  """The channels to show: `channels` (repeats dropped), or the first `max_channels`;
  UserError naming --layer or --channels otherwise."""
  if layer not in run.model.layer_names:
    raise UserError(f"--layer: unknown {layer!r}; valid: {', '.join(run.model.layer_names)}")
  num = _num_channels(run, layer)
  chosen = list(dict.fromkeys(int(c) for c in channels))  # unique, in the order given
  chosen = np.asarray(chosen or range(min(max_channels, num)), np.int32)
  bad = chosen[(chosen < 0) | (chosen >= num)]
  if bad.size:
    raise UserError(f"--channels: {int(bad[0])} is out of range for {layer}'s {num} channels")
  return chosen


def _color(run: Run) -> np.ndarray | None:
  """sqrt of the channel covariance of up to 64 training images in model-input space (RGB)."""
  if run.info.image_shape[-1] != 3:
    return None
  n = min(64, len(run.split("train")))
  images = run.records("train", range(n))["image"]
  return fv.color_correlation(np.asarray(run.inputs(images)))


# The VisOptions fields `fv.visualize` takes as they are.
_PASSED = (
  "objective", "parameterization", "steps", "optimizer", "learning_rate", "blur_sigma",
  "blur_every", "l2", "tv", "init_scale", "batch_size",
)  # fmt: skip


def stage_visualizations(
  run: Run,
  layer: str,
  channels: Sequence[int] = (),
  options: VisOptions | None = None,
  *,
  split: str = "validation",
  max_channels: int = 16,
  force: bool = False,
) -> Visualizations:
  """One image per channel of `layer` (default: the first `max_channels`), from the cache in
  the run's workdir when it holds these settings (unless `force`), else optimised and cached."""
  options = options or VisOptions()
  units = check_channels(run, layer, channels, max_channels)
  settings = _settings(run, layer, units, options, split)
  if not force and (hit := _load(run.workdir, layer, settings)) is not None:
    return hit
  shape = tuple(run.info.image_shape)
  norm = run.normalization
  init = None
  if options.init == "image":
    init = np.asarray(run.inputs(run.records(split, [0], "--split")["image"][0]))
  kw = {k: getattr(options, k) for k in _PASSED}
  kw |= dict(
    transforms=_transforms(options, len(shape) - 1),
    color=_color(run) if options.decorrelate else None,
    # The images stay inside what uint8 data can give: intensities 0..1, normalised.
    value_range=(-norm.mean / norm.std, (1.0 - norm.mean) / norm.std),
  )
  features = stage_fn(run.model, None, layer)
  try:
    out = compile.jit(
      lambda key, start: fv.visualize(features, shape, units, key=key, init=start, **kw)
    )(jax.random.key(options.seed), init)
  except ValueError as e:
    raise UserError(f"--{e}") from None
  images = np.asarray(out.images, np.float32)
  vis = Visualizations(
    images, norm.to_uint8(images), units, np.asarray(out.activation, np.float32), settings, False
  )
  _save(run.workdir, layer, vis)
  return vis
