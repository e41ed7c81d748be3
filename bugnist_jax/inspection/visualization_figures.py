"""The figures of `python -m bugnist_jax.featurevis` (see there), as a library function."""

import dataclasses
import pathlib

import numpy as np

from bugnist_jax import viz
from bugnist_jax.inspection.patches import item_patch, scan_channels, top_patches
from bugnist_jax.inspection.visualization import CACHE, VisOptions, stage_visualizations
from bugnist_jax.options import option, validate
from bugnist_jax.runs import Run
from bugnist_jax.viz.projections import AXIS_NAMES, oriented

PER_ROW = 4  # 2D: channels per row of the grid (each with its top patch)


@dataclasses.dataclass(frozen=True)
class FeatureVisRequest:
  """What the featurevis command shows; `options` say how the images are optimised."""

  layer: str | None = option(None, "Stage to visualise (default: the model's cam_layer).")
  channels: tuple[int, ...] = option((), "Channels of --layer (default: the first ones).", min=0)
  max_channels: int = option(16, "How many channels when --channels is not given.", min=1)
  split: str = option("validation", "Split scanned for each channel's top activating patch.")
  step: int | None = option(None, "Checkpoint step (default: best by validation).", min=0)
  data_root: str | None = option(None, "Data folder, if it moved since training.")
  force: bool = option(False, "Recompute even when the cache holds these settings.")
  options: VisOptions = dataclasses.field(default_factory=VisOptions)


def top_patch_per_channel(run: Run, layer: str, channels, split: str) -> list[tuple]:
  """(patch [h, w, C] uint8 (3D: its MIP over D), caption) of each channel's top item in
  `split`: the receptive field of its strongest position (one scan for all channels), or for
  a stage without a field, the Grad-CAM-located patch of `inspection.top_patches`."""
  source, norm, seen = run.split(split, "--split"), run.normalization, run.transforms
  try:
    scans = scan_channels(run.model, source, norm, layer, channels, transforms=seen)
  except ValueError:  # a flat stage: no positions of its own
    found = [top_patches(run.model, source, norm, layer, int(c), k=1, transforms=seen)[:2]
             for c in channels]  # fmt: skip
    return [(patches[0], f"top {captions[0]}") for patches, captions in found]
  found = [item_patch(scan, source, int(scan.top(1)[0]), seen) for scan in scans]
  return [(patch, f"top {caption}") for patch, caption in found]


def _views(volume: np.ndarray) -> tuple[list[np.ndarray], list[str]]:
  """MIPs and centre slices of a uint8 volume [Z, Y, X, 1], as drawn (Z left to right)."""
  v = volume[..., 0]
  centre = [n // 2 for n in v.shape]
  mips = [oriented(v.max(axis=a), a) for a in range(3)]
  slices = [oriented(np.take(v, centre[a], axis=a), a) for a in range(3)]
  names = [f"MIP {AXIS_NAMES[a]}" for a in range(3)]
  names += [f"{AXIS_NAMES[a]}={centre[a]}" for a in range(3)]
  return mips + slices, names


def write_visualizations(workdir, request: FeatureVisRequest | None = None) -> list[pathlib.Path]:
  """Visualises one stage of the run in `workdir` (cached, see `inspection.visualization`),
  writes W/featurevis/<stage>.png (and for volumes <stage>.tif); returns the paths."""
  request = validate(request or FeatureVisRequest())
  run = Run.open(workdir, request.step, request.data_root)
  layer = request.layer or run.model.cam_layer()
  vis = stage_visualizations(
    run,
    layer,
    request.channels,
    request.options,
    split=request.split,
    max_channels=request.max_channels,
    force=request.force,
  )
  patches = top_patch_per_channel(run, layer, vis.channels, request.split)
  out = run.workdir / CACHE
  o = request.options
  title = (
    f"{layer}: {o.objective} maximised ({o.parameterization}, {o.steps} steps, step "
    f"{run.step}); beside each, its top {request.split} patch"
  )
  acts = [f"c{c} act {a:.3g}" for c, a in zip(vis.channels, vis.activation, strict=True)]
  png = out / f"{layer}.png"
  if vis.display.ndim == 5:  # volumes: a row per channel, its views, then the patch
    rows, captions = [], []
    for image, caption, (patch, top) in zip(vis.display, acts, patches, strict=True):
      views, names = _views(image)
      rows.append([*views, patch])
      captions.append([f"{caption} {names[0]}", *names[1:], top])
    viz.plot_patch_grid(rows, png, captions, title=title)
    volumes = {f"c{c}": image for c, image in zip(vis.channels, vis.display, strict=True)}
    return [png, viz.save_imagej_channels(out / f"{layer}.tif", volumes)]
  panels, names = [], []  # images: PER_ROW channels a row, each followed by its patch
  for image, caption, (patch, top) in zip(vis.display, acts, patches, strict=True):
    panels += [image, patch]
    names += [caption, top]
  step = 2 * PER_ROW
  rows = [panels[i : i + step] for i in range(0, len(panels), step)]
  captions = [names[i : i + step] for i in range(0, len(names), step)]
  viz.plot_patch_grid(rows, png, captions, title=title)
  return [png]
