"""The feature-visualisation cache the viewer reads: one file per stage in the run's workdir.

Format (`python -m bugnist_jax.featurevis` writes it, `bugnist_jax.inspection.visualization`
documents it in full; `write_cache` writes its display part):

    W/featurevis/<stage>.npz     numpy .npz, no pickled objects, with
      display   uint8 [N, *spatial, C]: the optimised inputs as display intensities (C = 1
                grey or 3 RGB; spatial as the model input's, 2D [H, W] or 3D [D, H, W])
      images    float32 [N, *spatial, C]: the same in model-input space (not read here);
                files without `display` hold the uint8 display images under `images`
      channels  int32 [N]: the stage channel each image maximises (unique, ascending or not)
      activation (optional) float32 [N]: the objective each image reached
      objective (optional) str: what was maximised; else the `objective` of the settings
                in W/featurevis/<stage>.json, if there is one

`<stage>` is a stage name of the run's model (`model.layer_names` or a branch). The viewer
lists the stages that have a file and shows image k beside the panel of `channels[k]`; a file
that does not follow the format is reported and skipped, never fatal.
"""

import json
import pathlib

import numpy as np

FOLDER = "featurevis"


def cache_path(workdir: str | pathlib.Path, stage: str) -> pathlib.Path:
  """W/featurevis/<stage>.npz; ValueError for a name that is not a plain identifier (the viewer
  passes only the model's own stage names, this keeps any other caller inside the folder)."""
  if not stage.isidentifier():
    raise ValueError(f"stage: {stage!r} is not a stage name")
  return pathlib.Path(workdir) / FOLDER / f"{stage}.npz"


def write_cache(
  workdir: str | pathlib.Path,
  stage: str,
  images: np.ndarray,
  channels,
  objective: str = "",
) -> pathlib.Path:
  """Writes W/featurevis/<stage>.npz (see the module docstring); returns its path."""
  images, channels = np.asarray(images), np.asarray(channels, np.int32).reshape(-1)
  _check(images, channels)
  path = cache_path(workdir, stage)
  path.parent.mkdir(parents=True, exist_ok=True)
  np.savez_compressed(path, images=images, channels=channels, objective=np.str_(objective))
  return path


def read_cache(
  workdir: str | pathlib.Path, stage: str, spatial: tuple[int, ...], num_channels: int
) -> dict | None:
  """{'images', 'channels', 'objective'} of stage `stage`, None if there is no file; ValueError
  naming the file if it does not fit a stage of `num_channels` channels and inputs of
  `spatial` shape."""
  path = cache_path(workdir, stage)
  if not path.is_file():
    return None
  try:
    with np.load(path, allow_pickle=False) as f:
      images = f["display"] if "display" in f else f["images"]
      channels = np.asarray(f["channels"]).reshape(-1)
      objective = str(f["objective"]) if "objective" in f else _objective(path)
  except (OSError, KeyError, ValueError) as e:
    raise ValueError(f"{path}: not a feature-visualisation cache ({e})") from None
  try:
    _check(images, channels)
    if tuple(images.shape[1:-1]) != tuple(spatial):
      raise ValueError(f"images are {images.shape[1:-1]}, the model input is {tuple(spatial)}")
    if channels.size and (channels.min() < 0 or channels.max() >= num_channels):
      raise ValueError(f"channels must be in [0, {num_channels})")
  except ValueError as e:
    raise ValueError(f"{path}: {e}") from None
  return {"images": images, "channels": channels.astype(np.int32), "objective": objective}


def _objective(path: pathlib.Path) -> str:
  """The objective named in the settings beside the cache (W/featurevis/<stage>.json), or ''."""
  try:
    return str(json.loads(path.with_suffix(".json").read_text()).get("objective", ""))
  except (OSError, ValueError, AttributeError):
    return ""


def _check(images: np.ndarray, channels: np.ndarray) -> None:
  if images.dtype != np.uint8 or images.ndim not in (4, 5) or images.shape[-1] not in (1, 3):
    raise ValueError(
      f"images: uint8 [N, *spatial, 1 or 3] expected, got {images.dtype} {images.shape}"
    )
  if len(channels) != len(images) or len(set(channels.tolist())) != len(channels):
    raise ValueError(f"channels: {len(images)} unique channel indices expected")
