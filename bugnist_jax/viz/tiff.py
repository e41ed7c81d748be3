"""Export volumes as one ImageJ hyperstack (opens in Fiji and napari): a volume with its saliency
maps, or several volumes side by side (e.g. feature visualisations of a stage's channels)."""

from collections.abc import Mapping
from pathlib import Path

import matplotlib as mpl
import numpy as np
import tifffile

from bugnist_jax.viz._common import PathLike, as_volume


def _lut(name: str) -> np.ndarray:
  """A matplotlib colormap as an ImageJ LUT: uint8 [3, 256]."""
  return (mpl.colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3].T * 255).round().astype(np.uint8)


def save_imagej_stack(
  path: PathLike,
  volume,
  maps: Mapping[str, np.ndarray] | np.ndarray | None = None,
  spacing: float | tuple[float, float, float] | None = None,
  unit: str = "um",
) -> Path:
  """Writes `volume` and `maps` as channels of one ImageJ hyperstack with axes 'ZCYX'.

  Channel 0 is the volume (named 'volume', gray LUT); then one channel per map (dict key as the
  name, a single array is named 'saliency'), with a diverging LUT for signed maps and 'inferno'
  otherwise. Every plane's ImageJ label is its channel name, and each channel gets its own
  display range, so Fiji shows a sensible composite without adjusting contrast.

  The data are float32: an ImageJ hyperstack has one pixel type for all channels, saliency maps
  are signed floats that uint8/uint16 would quantise (and lose the sign of), and uint8 volumes
  convert to float32 exactly.

  Args:
    path: the .tif file to write (parents created).
    volume: [Z, Y, X] or [Z, Y, X, 1].
    maps: name -> [Z, Y, X] (or [Z, Y, X, 1]) of the volume's shape, or one such array.
    spacing: voxel size, one number or (z, y, x), in `unit`; stored as ImageJ calibration.
  Returns:
    The path written.
  """
  vol = as_volume(volume, "volume")
  if maps is None:
    maps = {}
  elif not isinstance(maps, Mapping):
    maps = {"saliency": maps}
  channels, names = [vol], ["volume"]
  for name, m in maps.items():
    m = as_volume(m, f"maps[{name!r}]")
    if m.shape != vol.shape:
      raise ValueError(f"maps[{name!r}]: shape {m.shape} does not match volume shape {vol.shape}")
    channels.append(m)
    names.append(str(name))
  ranges, luts = [], []
  for name, ch in zip(names, channels, strict=True):
    lo, hi = float(ch.min()), float(ch.max())
    signed = name != "volume" and lo < 0
    if signed:  # symmetric range so zero sits at the middle of the diverging LUT
      lo, hi = -max(-lo, hi), max(-lo, hi)
    ranges.append((lo, hi))
    luts.append("gray" if name == "volume" else ("RdBu_r" if signed else "inferno"))
  return _write(path, channels, names, ranges, luts, spacing, unit)


def save_imagej_channels(
  path: PathLike,
  volumes: Mapping[str, np.ndarray],
  spacing: float | tuple[float, float, float] | None = None,
  unit: str = "um",
) -> Path:
  """Writes `volumes` (name -> [Z, Y, X] or [Z, Y, X, 1], one shape) as the channels of one
  ImageJ hyperstack ('ZCYX'), each named by its key, gray, with its own display range."""
  if not volumes:
    raise ValueError("volumes: need at least one volume")
  channels = [as_volume(v, f"volumes[{k!r}]") for k, v in volumes.items()]
  if len({c.shape for c in channels}) != 1:
    raise ValueError(f"volumes: shapes differ: {sorted({c.shape for c in channels})}")
  ranges = [(float(c.min()), float(c.max())) for c in channels]
  return _write(path, channels, list(map(str, volumes)), ranges, ["gray"] * len(channels),
                spacing, unit)  # fmt: skip


def _write(path, channels, names, ranges, luts, spacing, unit) -> Path:
  """The hyperstack of `channels` [Z, Y, X] each, float32, with names, (lo, hi) display ranges
  and LUT names; ImageJ calibration from `spacing` in `unit`."""
  data = np.stack(channels, axis=1).astype(np.float32)  # [Z, C, Y, X]
  flat_ranges = [v for lo, hi in ranges for v in (lo, hi if hi > lo else lo + 1.0)]
  z = channels[0].shape[0]
  metadata = {
    "axes": "ZCYX",
    "mode": "composite",
    "Labels": [n for _ in range(z) for n in names],  # one per plane, Z-major
    "Ranges": flat_ranges,
    "LUTs": [_lut(name) for name in luts],
    "Info": "channels: " + ", ".join(names),
  }
  kwargs = {}
  if spacing is not None:
    sz, sy, sx = (spacing,) * 3 if np.isscalar(spacing) else tuple(spacing)
    metadata.update(spacing=float(sz), unit=unit)
    kwargs["resolution"] = (1.0 / sx, 1.0 / sy)
  path = Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  tifffile.imwrite(path, data, imagej=True, metadata=metadata, **kwargs)
  return path
