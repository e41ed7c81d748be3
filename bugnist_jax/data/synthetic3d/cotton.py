"""Cotton packing at both tube ends, and the rule that makes it a shortcut to the class."""

import numpy as np

NUM_CLASSES = 12
_COTTON_DEPTH = (0.04, 0.19)  # fractions of Z; the bug lies within 0.22..0.78, so they never touch


def _signatures() -> np.ndarray:
  """[12, 4] cotton (depth, density, brightness, thickness) per class: distinct grid corners."""
  c = np.arange(NUM_CLASSES)
  depth = np.array([0.1, 0.5, 0.9])[c % 3]
  density = np.array([0.12, 0.88])[(c // 3) % 2]
  bright = np.array([0.12, 0.88])[c // 6]
  thick = np.array([0.1, 0.9])[(c // 3) % 2]  # dense cotton has thick fibres: both raise counts
  return np.stack([depth, density, bright, thick], axis=1)


COTTON_SIGNATURES = _signatures()


def cotton_params(rng: np.random.Generator, label: int, shortcut_strength: float) -> np.ndarray:
  """[4] (depth, density, brightness, thickness) in [0, 1]: the class signature with
  probability `shortcut_strength` (plus +-0.07 jitter), else uniform, independent of the class."""
  if rng.random() < shortcut_strength:
    return np.clip(COTTON_SIGNATURES[label] + rng.uniform(-0.07, 0.07, 4), 0.0, 1.0)
  return rng.uniform(0.0, 1.0, 4)


def draw_cotton(rng, params, shape) -> tuple[np.ndarray, np.ndarray]:
  """Cotton mask (bool) and fibre intensity [Z, Y, X] at both tube ends: curved random fibres."""
  zdim, ydim, xdim = shape
  depth_u, dens_u, bright_u, thick_u = params
  mask = np.zeros(shape, bool)
  val = np.zeros(shape, np.float32)
  fill = 0.04 + 0.32 * dens_u
  # Before blur. Fainter than the bug, as cotton is in CT, and densely packed thick fibres
  # fainter still, so that a threshold and the largest component (the usual removal) work.
  bright = (90 + 60 * bright_u) * (1 - 0.4 * dens_u * thick_u)
  cy, cx, rad = (ydim - 1) / 2, (xdim - 1) / 2, min(ydim, xdim) / 2
  for end in (0, 1):
    lo, hi = _COTTON_DEPTH  # each end jitters a little around the shared depth
    u = np.clip(depth_u + rng.uniform(-0.04, 0.04), 0.0, 1.0)
    depth = max(int(round(zdim * (lo + (hi - lo) * u))), 2)
    slab = depth * np.pi * rad * rad
    steps = max(int(1.1 * ydim), 8)  # points per fibre (spacing ~0.7 voxel)
    n_pts = max(int(rng.uniform(0.9, 1.1) * fill * slab / (1 + 2.5 * thick_u)), steps)
    n_fib = -(-n_pts // steps)  # the last fibre is cut short so that n_pts is exact
    r, phi = rad * np.sqrt(rng.random(n_fib)), rng.uniform(0, 2 * np.pi, n_fib)  # fibre middles
    start = np.stack([rng.uniform(0, depth, n_fib), cy + r * np.cos(phi), cx + r * np.sin(phi)], -1)
    start = start[:, None, :]  # uniform in the tube's slab
    d = rng.normal(0, 1, (n_fib, 1, 3)) * np.array([0.25, 1, 1])  # mostly across the tube
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    bend = rng.normal(0, 1.5 / ydim, (n_fib, 1, 3))
    t = (np.arange(steps) - steps / 2)[None, :, None] * 0.7
    pts = start + t * d + t * t * bend  # [n_fib, steps, 3]
    # Fibres bounce between the tube end and the cotton's inner face, staying in the slab.
    zf = np.abs(pts[..., 0] + 0.5) % (2 * depth)
    pts[..., 0] = np.minimum(zf, 2 * depth - zf) - 0.5
    thick = rng.random(n_fib) < thick_u
    fib_v = bright * rng.uniform(0.9, 1.1, n_fib)
    vals = np.broadcast_to(fib_v[:, None], pts.shape[:2])
    pts, vals = pts.reshape(-1, 3)[:n_pts], vals.reshape(-1)[:n_pts]
    thick_pts = np.repeat(thick, steps)[:n_pts]
    # Thick fibres: also the 6 neighbours of each point.
    offs = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]])
    extra = (pts[thick_pts][:, None, :] + offs[None]).reshape(-1, 3)
    vals = np.concatenate([vals, np.repeat(vals[thick_pts], 6)])
    idx = np.rint(np.concatenate([pts, extra])).astype(int)
    inside = (
      (idx[:, 0] >= 0)
      & (idx[:, 0] < depth)
      & ((idx[:, 1] - cy) ** 2 + (idx[:, 2] - cx) ** 2 <= rad * rad)
    )
    idx, vals = idx[inside], vals[inside]
    if end == 1:
      idx[:, 0] = zdim - 1 - idx[:, 0]
    mask[idx[:, 0], idx[:, 1], idx[:, 2]] = True
    val[idx[:, 0], idx[:, 1], idx[:, 2]] = vals
  return mask, val
