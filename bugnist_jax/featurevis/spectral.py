"""How much of an image's or a filter's energy lies at high spatial frequencies (numpy).

The memorisation study asks whether memorising models have more high-frequency features
(DeepVisionVR's conclusion, seed 004); this turns the question into a number: the share of
spectral energy above half the Nyquist frequency.
"""

import numpy as np


def high_frequency_share(
  x, axes: tuple[int, ...], cutoff: float = 0.5, pad_to: int | None = None, remove_mean: bool = True
):
  """Share of the energy of `x` (mean removed) above `cutoff` x Nyquist along `axes`.

  The spectrum is the full N-d DFT over `axes`, its frequency the radial |f| in cycles per
  sample (Nyquist = 0.5), so `cutoff=0.5` counts |f| > 0.25. With `remove_mean` the mean over
  `axes` (the zero frequency) is removed first: an image's constant offset is no texture, but
  a filter's sum is its low-pass response and counts. `pad_to` zero-pads every axis
  to that length first: a 3x3 kernel's spectrum has only 3 samples per axis, padding samples
  it finely. Other axes (batch, channels) are kept; the share is of the energy summed over
  every axis that is not in `axes` and not the first (one share per leading item).

  Args:
    x: array [B, ...] with the spatial axes `axes` (never 0).
  Returns:
    [B] shares in [0, 1] (nan where an item is constant).
  """
  x = np.asarray(x, np.float64)
  axes = tuple(a % x.ndim for a in axes)
  if 0 in axes or not axes:
    raise ValueError(f"axes: expected spatial axes after the batch axis, got {axes}")
  if remove_mean:
    x = x - x.mean(axis=axes, keepdims=True)
  sizes = [max(x.shape[a], pad_to or 0) for a in axes]
  power = np.abs(np.fft.fftn(x, s=sizes, axes=axes)) ** 2
  grids = np.meshgrid(*[np.fft.fftfreq(n) for n in sizes], indexing="ij")
  radius = np.sqrt(sum(g**2 for g in grids))
  shape = [1] * x.ndim
  for a, n in zip(axes, sizes, strict=True):
    shape[a] = n
  high = (radius > cutoff * 0.5).reshape(shape)
  total = power.reshape(x.shape[0], -1).sum(-1)
  above = np.where(high, power, 0.0).reshape(x.shape[0], -1).sum(-1)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(total > 0, above / total, np.nan)


def kernel_high_frequency_share(kernel, cutoff: float = 0.5, pad_to: int = 32) -> np.ndarray:
  """`high_frequency_share` of every filter of a conv kernel [*k, Cin, Cout] (flax layout),
  energy summed over input channels, the mean kept: [Cout]."""
  k = np.asarray(kernel, np.float64)
  ndim = k.ndim - 2
  filters = np.moveaxis(k, -1, 0)  # [Cout, *k, Cin]
  return high_frequency_share(filters, tuple(range(1, ndim + 1)), cutoff, pad_to, False)
