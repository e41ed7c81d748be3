"""Pose (rotate, scale, place in the tube) and partial-volume rasterisation of a bug, and blur."""

import numpy as np

from bugnist_jax.data.synthetic3d.bugs import Parts

_REF_SHAPE = (64.0, 32.0, 32.0)  # the grid the bug lengths are given in
_BUG_Z = (0.22, 0.78)  # the bug lies within these fractions of Z (the cotton never reaches it)


def _rot_z(a: float) -> np.ndarray:  # spin about the tube axis (array axis 0)
  c, s = np.cos(a), np.sin(a)
  return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rot_x(a: float) -> np.ndarray:  # tilt the body axis away from the tube axis
  c, s = np.cos(a), np.sin(a)
  return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def pose(b: Parts, shape: tuple[int, int, int]) -> tuple[list, list]:
  """Rotates, scales and places the bug in the central part of the tube; world primitives."""
  r = b.rng
  zdim, ydim, xdim = shape
  rot = _rot_z(r.uniform(0, 2 * np.pi)) @ _rot_x(min(abs(r.normal(0, 0.3)), 0.6))
  rot = rot @ _rot_z(r.uniform(0, 2 * np.pi))
  if r.random() < 0.5:  # head down
    rot = rot @ np.diag([-1.0, 1.0, -1.0])
  scale = min(s / ref for s, ref in zip(shape, _REF_SHAPE, strict=True)) * r.uniform(1.2, 1.4)
  ells = [(rot @ c * scale, a * scale, rot @ m, v, i) for c, a, m, v, i in b.ells]
  caps = [
    (rot @ p0 * scale, rot @ p1 * scale, r0 * scale, r1 * scale, v) for p0, p1, r0, r1, v in b.caps
  ]
  lo, hi = _extent(ells, caps)
  box_lo = np.array([_BUG_Z[0] * zdim + 0.5, 0.0, 0.0])
  box_hi = np.array([_BUG_Z[1] * zdim - 1.5, ydim - 1.0, xdim - 1.0])
  fit = min(1.0, float(np.min((box_hi - box_lo) / np.maximum(hi - lo, 1e-6))))
  shift = r.uniform(box_lo - lo * fit, np.maximum(box_hi - hi * fit, box_lo - lo * fit))
  ells = [(c * fit + shift, a * fit, m, v, i) for c, a, m, v, i in ells]
  caps = [(p0 * fit + shift, p1 * fit + shift, r0 * fit, r1 * fit, v) for p0, p1, r0, r1, v in caps]
  return ells, caps


def _extent(ells: list, caps: list) -> tuple[np.ndarray, np.ndarray]:
  """Axis-aligned bounds [3], [3] of world primitives (surfaces, not soft edges)."""
  lo, hi = [], []
  for c, a, m, _, _ in ells:
    e = np.sqrt(((m * a) ** 2).sum(axis=1))  # exact half-extent of a rotated ellipsoid
    lo.append(c - e)
    hi.append(c + e)
  for p0, p1, r0, r1, _ in caps:
    lo.append(np.minimum(p0 - r0, p1 - r1))
    hi.append(np.maximum(p0 + r0, p1 + r1))
  return np.min(lo, axis=0), np.max(hi, axis=0)


def _box(lo, hi, shape) -> tuple[tuple[slice, ...], list] | None:
  """Grid slices covering [lo, hi] plus a voxel, and broadcastable float32 coordinates."""
  a = [max(int(np.floor(v)) - 1, 0) for v in lo]
  b = [min(int(np.ceil(v)) + 2, n) for v, n in zip(hi, shape, strict=True)]
  if any(j <= i for i, j in zip(a, b, strict=True)):
    return None
  sl = tuple(slice(i, j) for i, j in zip(a, b, strict=True))
  r = [np.arange(i, j, dtype=np.float32) for i, j in zip(a, b, strict=True)]
  return sl, [r[0][:, None, None], r[1][None, :, None], r[2][None, None, :]]


def rasterise(ells: list, caps: list, shape) -> tuple[np.ndarray, np.ndarray]:
  """Partial-volume occupancy [Z, Y, X] in [0, 1] and relative tissue value [Z, Y, X].

  Scalars are Python floats so the float32 grids are not promoted to float64 (NEP 50).
  """
  occ = np.zeros(shape, np.float32)
  val = np.zeros(shape, np.float32)

  def paint(sl, dist, v, inner):
    o = np.clip(0.5 - dist, 0.0, 1.0)  # distance in voxels -> covered fraction
    ov = o * v
    if inner != 1.0:  # hollow look: a bright cuticle over dimmer tissue
      ov[dist < -1.2] *= inner
    np.maximum(occ[sl], o, out=occ[sl])
    np.maximum(val[sl], ov, out=val[sl])

  for c, a, m, v, inner in ells:
    e = np.sqrt(((m * a) ** 2).sum(axis=1))
    box = _box(c - e, c + e, shape)
    if box is None:
      continue
    sl, (z, y, x) = box
    dz, dy, dx = z - float(c[0]), y - float(c[1]), x - float(c[2])
    w = (m / a[None, :]).T.tolist()  # row k: axis k direction / semi-axis k
    q2 = sum((w[k][0] * dz + w[k][1] * dy + w[k][2] * dx) ** 2 for k in range(3))
    rho = np.sqrt(q2) + 1e-6
    rad = np.sqrt(dz * dz + dy * dy + dx * dx)
    paint(sl, rad * (1 - 1 / rho), float(v), inner)  # distance along the ray from the centre
  for p0, p1, r0, r1, v in caps:
    rmax = max(r0, r1)
    box = _box(np.minimum(p0, p1) - rmax, np.maximum(p0, p1) + rmax, shape)
    if box is None:
      continue
    sl, (z, y, x) = box
    d = (p1 - p0).tolist()
    dd = max(d[0] ** 2 + d[1] ** 2 + d[2] ** 2, 1e-9)
    wz, wy, wx = z - float(p0[0]), y - float(p0[1]), x - float(p0[2])
    t = np.clip((wz * d[0] + wy * d[1] + wx * d[2]) * (1 / dd), 0.0, 1.0)
    dist = np.sqrt((wz - t * d[0]) ** 2 + (wy - t * d[1]) ** 2 + (wx - t * d[2]) ** 2)
    paint(sl, dist - (float(r0) + t * float(r1 - r0)), float(v), 1.0)
  return occ, val


def blur(v: np.ndarray) -> np.ndarray:
  """Separable [1, 4, 1] / 6 blur along every axis (edges replicated): a slight CT softness."""
  for ax in range(3):
    u = np.moveaxis(v, ax, 0)
    out = 4 * u
    out[1:] += u[:-1]
    out[:-1] += u[1:]
    out[0] += u[0]
    out[-1] += u[-1]
    v = np.moveaxis(out, 0, ax)
  return v * (1 / 216)
