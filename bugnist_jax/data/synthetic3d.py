"""Embedded synthetic BugNIST-like volumes: procedural 3D bugs in a tube packed with cotton.

The project's default data source: it needs no download and is generated on the fly.

Each example is a `(Z, Y, X)` uint8 micro-CT-like volume (Z is the long tube axis) holding one
bug of one of the 12 BugNIST classes (`CLASS_CODES` order), posed at random in the middle of the
tube, with fibrous "cotton" packing at both ends (low and high Z).

Bugs differ by SHAPE: segmented orthopterans with long hind legs and antennae (AC, BC, GH), flies
with flat or curled wings (BF, CF), segmented larvae (BL hairy, MA short and tapered, ML long and
thin, SL flat and wide), smooth pupae (BP and PP: deliberately similar, BP a little larger, blunter
and ring-ridged, PP smaller, more slender and pointed) and flat plated woodlice (WO). Shapes are
built from soft ellipsoids and tapered capsules in a bug frame, then rotated (spin about Z, a
tilt of up to ~35 degrees, head up or down), scaled and shifted, and rasterised with partial-volume
edges on the grid.

Cotton and the shortcut. The cotton at each end has four parameters in [0, 1]: depth (how far it
extends into the tube, 4%..19% of Z), density (fill fraction of fibres), brightness (fibre
intensity, fainter than the bug as cotton is in CT, so that the usual removal by threshold and
largest connected component works) and thickness (share of thick fibres).
Rule, with `s = shortcut_strength`: with probability `s` the four parameters are the
class's signature `_COTTON_SIGNATURES[label]` (the 12 corners of a grid of 3 depths x 2 densities
x 2 brightnesses; thickness follows density) plus uniform jitter of +-0.07; otherwise they are
drawn uniformly from [0, 1]^4, independent of the class. So a classifier that reads only the
cotton can reach about `s + (1 - s) / 12` accuracy: chance at `s = 0`, near perfect at `s = 1`.
The cotton never touches the bug: it stops at 19% of Z from each end and the bug is fitted inside
the central 22%..78% of Z, so the cotton's depth does not depend on the bug either.

Determinism: example `i` of a source with seed `s` is drawn from `np.random.default_rng([s, i])`
and has label `i % 12`.
"""

import numpy as np

from bugnist_jax.data.classes import CLASS_CODES
from bugnist_jax.errors import UserError

NUM_CLASSES = len(CLASS_CODES)
# Procedural lengths are in voxels of the Tiny BugNIST grid (64, 32, 32); other shapes rescale.
_REF_SHAPE = (64.0, 32.0, 32.0)
_BUG_Z = (0.22, 0.78)  # the bug lies within these fractions of Z ...
_COTTON_DEPTH = (0.04, 0.19)  # ... and the cotton within these, so they never touch.


def _signatures() -> np.ndarray:
  """[12, 4] cotton (depth, density, brightness, thickness) per class: distinct grid corners."""
  c = np.arange(NUM_CLASSES)
  depth = np.array([0.1, 0.5, 0.9])[c % 3]
  density = np.array([0.12, 0.88])[(c // 3) % 2]
  bright = np.array([0.12, 0.88])[c // 6]
  thick = np.array([0.1, 0.9])[(c // 3) % 2]  # dense cotton has thick fibres: both raise counts
  return np.stack([depth, density, bright, thick], axis=1)


_COTTON_SIGNATURES = _signatures()


# ---------------------------------------------------------------------------------------------
# Bug shapes: primitives in the bug frame (axis 0 = body axis, head at +; 1 = dorsal; 2 = lateral)


def _unit(v: np.ndarray) -> np.ndarray:
  return v / max(float(np.linalg.norm(v)), 1e-9)


def _frame(axis: np.ndarray) -> np.ndarray:
  """[3, 3] orthonormal columns: `axis`, then a thin (dorsal-ish) and a wide (lateral-ish) axis."""
  a = _unit(axis)
  thin = _unit(np.cross(a, [0.0, 0.0, 1.0]))
  return np.stack([a, thin, np.cross(a, thin)], axis=1)


def _rodrigues(axis: np.ndarray, angle: float) -> np.ndarray:
  """[3, 3] rotation by `angle` about the unit vector `axis`."""
  k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
  return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


class _Parts:
  """Collects soft primitives. Values are relative tissue densities (1 = body tissue)."""

  def __init__(self, rng: np.random.Generator):
    self.rng = rng
    self.ells = []  # (center [3], semi-axes [3], rot [3, 3] columns = axes, value, inner)
    self.caps = []  # (p0 [3], p1 [3], r0, r1, value)

  def ell(self, c, a, v=1.0, rot=None, inner=0.8):
    rot = np.eye(3) if rot is None else rot
    v *= self.rng.uniform(0.9, 1.1)  # tissue density varies from part to part
    self.ells.append((np.asarray(c, float), np.asarray(a, float), rot, v, inner))

  def cap(self, p0, p1, r0, r1=None, v=1.0):
    r1 = r0 if r1 is None else r1
    v *= self.rng.uniform(0.9, 1.1)
    self.caps.append((np.asarray(p0, float), np.asarray(p1, float), r0, r1, v))

  def limb(self, start, dirs, lens, radii, v=1.0, wobble=0.15):
    """A chain of capsules from `start` along jittered directions; returns the end point."""
    p = np.asarray(start, float)
    for d, n, r in zip(dirs, lens, radii, strict=True):
      q = p + n * _unit(np.asarray(d, float) + self.rng.normal(0, wobble, 3))
      self.cap(p, q, r, r * 0.85, v)
      p = q
    return p


def _orthopteran(b: _Parts, p: dict) -> None:
  """Crickets and grasshopper: head, pronotum, segmented abdomen, legs, antennae, cerci."""
  r = b.rng
  length, w, h = p["len"], p["w"], p["head"]
  zh = length / 2 - h
  b.ell((zh, 0.2, 0), (h, h * p["head_tall"], h * 0.95))
  zt = zh - h - 2.8
  b.ell((zt, 0.3, 0), (3.2, w * 1.0, w * 0.95), inner=0.75)
  n = 6
  z0, z1 = zt - 2.5, -length / 2
  for k in range(n):
    u = (k + 0.5) / n
    prof = 1.0 - 0.45 * u**2
    b.ell((z0 + (z1 - z0) * u, 0, 0), ((z0 - z1) / n * 0.68, w * prof * 0.95, w * prof))
  for side in (-1, 1):
    # Antennae start forward and sweep back along the body.
    ant = p["ant"]
    spread, curl = r.uniform(0.2, 0.6), r.uniform(0.8, 1.3)
    dirs = [(np.cos(spread + curl * t), 0.25, side * np.sin(spread + curl * t)) for t in (0, 1, 2)]
    b.limb((zh + h * 0.8, 0.8, side * 1.0), dirs, [ant / 3] * 3, [p["ant_r"]] * 3, v=0.9)
    # Front and middle legs: down and outwards, tibia forward or back.
    for zl, fwd in ((zt + 1.5, 0.6), (zt - 1.5, -0.6)):
      b.limb((zl, -w * 0.6, side * w * 0.5), [(fwd * 0.3, -0.7, side), (fwd, -0.5, side * 0.4)],
             [p["leg"], p["leg"]], [0.6, 0.5], v=0.9)  # fmt: skip
    # Hind legs: a thick femur back along the abdomen, the tibia folded under it.
    knee = b.limb((zt - 2.5, -w * 0.3, side * w * 0.8), [(-1, 0.35, side * 0.35)],
                  [p["femur"]], [p["femur_r"]])  # fmt: skip
    b.limb(knee, [(1, -0.6, side * 0.1)], [p["tibia"]], [0.6], v=0.9)
    b.cap((z1 + 0.5, 0, side * 0.6), (z1 - p["cerci"], 0.3, side * (0.6 + p["cerci"] * 0.3)),
          0.45, 0.3, v=0.85)  # fmt: skip
    if p["wings"]:
      b.ell((zt - length * 0.3, w * 0.75, side * w * 0.35), (length * 0.36, 0.55, w * 0.6), 0.7)


def _fly(b: _Parts, p: dict) -> None:
  """Flies: head with eyes, thorax, abdomen, six legs, flat (BF) or curled (CF) wings."""
  r = b.rng
  h, t, a = p["head"], p["thorax"], p["abdomen"]
  b.ell((t[0] + h * 0.9, 0, 0), (h * 0.8, h, h))
  for side in (-1, 1):
    b.ell((t[0] + h * 1.2, 0.4, side * h * 0.7), (h * 0.6, h * 0.7, h * 0.5), 1.1)
  b.ell((0, 0, 0), t, inner=0.7)
  b.ell((-t[0] - a[0] * 0.85, -0.3, 0), a, inner=0.7)
  for side in (-1, 1):
    for zl in (t[0] * 0.6, 0.0, -t[0] * 0.6):
      b.limb((zl, -t[1] * 0.7, side * t[2] * 0.5), [(0, -0.5, side), (zl * 0.2, -1, side * 0.3)],
             [p["leg"], p["leg"]], [0.55, 0.45], v=0.85)  # fmt: skip
    base = np.array([-t[0] * 0.3, t[1] * 0.8, side * t[2] * 0.5])
    if p["curl"] == 0:  # flat wings lying over the abdomen, splayed sideways
      ang = r.uniform(0.25, 0.55)
      axis = np.array([-np.cos(ang), 0.12, side * np.sin(ang)])
      b.ell(base + axis * p["wing"], (p["wing"], 0.5, p["wing"] * 0.42), 0.6, _frame(axis), 1.0)
    else:  # curled wings: an arc bending up and forward over the back
      pt, ang = base, r.uniform(-0.1, 0.2)
      for _ in range(4):
        d = np.array([-np.cos(ang), np.sin(ang), side * 0.35])
        pt = b.limb(pt, [d], [p["wing"] / 2.2], [0.9], v=0.6, wobble=0.05)
        ang += p["curl"] * r.uniform(0.8, 1.2)


def _segmented(b: _Parts, p: dict) -> None:
  """Larvae and pupae: ellipsoid segments along a gently curved centre line.

  `p["prof"](u)` gives the radius at u in [0, 1] from head to tail; `overlap` > 0.75 gives a
  smooth body, ~0.55 visible ridges; `flat` squashes the dorsal axis.
  """
  r = b.rng
  n, length = p["n"], p["len"]
  kappa = r.uniform(-p["bend"], p["bend"])
  psi = r.uniform(0, 2 * np.pi)
  bend_dir = np.array([0.0, np.cos(psi), np.sin(psi)])
  normal = _unit(np.cross([1.0, 0, 0], bend_dir))
  step = length / n
  for k in range(n):
    u = (k + 0.5) / n
    s = length / 2 - u * length  # arc length from the middle, head at +
    rot = _rodrigues(normal, kappa * s)  # the segment follows the arc's tangent
    c = _arc(s, kappa, bend_dir)
    rad = p["prof"](u)
    b.ell(c, (step * p["overlap"], rad * p["flat"], rad), p.get("v", 1.0), rot, p.get("inner", 0.8))
    for _ in range(p.get("hairs", 0)):  # bristles in the upper half plane of the segment
      ang = r.uniform(-0.3, np.pi + 0.3)
      d = rot @ np.array([r.uniform(-0.3, 0.3), np.sin(ang) * p["flat"], np.cos(ang)])
      root = c + rot @ np.array([0, np.sin(ang) * rad * p["flat"], np.cos(ang) * rad]) * 0.9
      b.cap(root, root + _unit(d) * p["hair_len"], 0.35, 0.25, 0.8)
  if p.get("tail", 0):  # urogomphi (mealworm) / tail points
    end = _arc(-length / 2, kappa, bend_dir)
    for side in (-1, 1):
      b.cap(end, end + np.array([-p["tail"], 0.3, side * 0.5]), 0.45, 0.3, 0.9)


def _arc(s: float, kappa: float, bend_dir: np.ndarray) -> np.ndarray:
  """Point at arc length s on a circle of curvature kappa through 0, tangent to axis 0."""
  if abs(kappa) < 1e-6:
    return np.array([s, 0.0, 0.0])
  return np.array([np.sin(kappa * s) / kappa, 0, 0]) + bend_dir * (1 - np.cos(kappa * s)) / kappa


def _woodlouse(b: _Parts, p: dict) -> None:
  """Woodlice: an oval dome of overlapping flat plates, seven pairs of short legs, antennae."""
  n, length, half_w = 9, p["len"], p["w"]
  step = length / n
  for k in range(n):
    u = (k + 0.5) / n
    e = np.sqrt(max(1 - (2 * u - 1) ** 2, 0.0)) ** 0.6
    z = length / 2 - u * length
    tilt = _rodrigues(np.array([0, 0, 1.0]), 0.25)  # plates overlap like roof tiles
    b.ell((z, 0.9 * e, 0), (step * 0.7, 0.7 + 1.4 * e, 1.0 + half_w * e), 1.0, tilt, 0.85)
  for side in (-1, 1):
    for k in range(7):
      z = length / 2 - (k + 1.2) / 8.5 * length
      b.limb((z, -0.4, side * half_w * 0.5), [(0, -0.6, side)], [p["leg"]], [0.5], v=0.85)
    b.limb((length / 2, 0.2, side * 1.2), [(1, 0.1, side * 0.8), (0.6, 0, side)], [2.5, 2.5],
           [0.5, 0.4], v=0.85)  # fmt: skip
    b.cap((-length / 2, 0, side * 1.0), (-length / 2 - 2.0, 0, side * 1.8), 0.5, 0.4, 0.85)


def _pow(base: float, e: float):
  return lambda u: base * max(1 - (2 * u - 1) ** 2, 0.04) ** e


# Class code -> (builder, parameters). Lengths in voxels of the (64, 32, 32) reference grid.
_BUGS = {
  "AC": (_orthopteran, dict(len=25, w=3.4, head=2.9, head_tall=1.05, ant=21, ant_r=0.45, leg=4,
                            femur=11, femur_r=1.3, tibia=10, cerci=5, wings=False)),
  "BC": (_orthopteran, dict(len=23, w=4.6, head=3.6, head_tall=1.0, ant=15, ant_r=0.45, leg=3.5,
                            femur=9.5, femur_r=1.9, tibia=8.5, cerci=3.5, wings=False)),
  "GH": (_orthopteran, dict(len=27, w=3.6, head=3.4, head_tall=1.35, ant=7, ant_r=0.65, leg=4,
                            femur=14, femur_r=2.1, tibia=13, cerci=1.5, wings=True)),
  "BF": (_fly, dict(head=3.0, thorax=(3.6, 3.3, 3.3), abdomen=(4.2, 3.1, 3.6), leg=4.0, wing=5.5,
                    curl=0)),
  "CF": (_fly, dict(head=2.5, thorax=(3.0, 2.6, 2.6), abdomen=(5.2, 2.3, 2.5), leg=4.8, wing=6.5,
                    curl=0.6)),
  "BL": (_segmented, dict(n=11, len=21, prof=lambda u: 2.6 * (1 - 0.5 * u**3) * min(1, 0.7 + 2 * u),
                          overlap=0.55, flat=0.8, bend=0.04, hairs=3, hair_len=2.4)),
  "MA": (_segmented, dict(n=10, len=16, prof=lambda u: 0.7 + 2.4 * np.sqrt(u) * (1.1 - 0.2 * u),
                          overlap=0.85, flat=0.95, bend=0.06)),
  "ML": (_segmented, dict(n=13, len=28, prof=lambda u: 1.8 + 0.2 * min(1, 5 * u), overlap=0.62,
                          flat=0.85, bend=0.03, tail=1.6, v=1.05)),
  "SL": (_segmented, dict(n=11, len=21, prof=lambda u: 1.4 + 3.2 * np.sin(np.pi * (0.15 + 0.8 * u)),
                          overlap=0.62, flat=0.45, bend=0.03, v=1.12)),
  "BP": (_segmented, dict(n=8, len=16.5, prof=_pow(3.6, 0.35), overlap=0.7, flat=1.0, bend=0.01,
                          inner=0.65)),
  "PP": (_segmented, dict(n=1, len=15.5, prof=lambda u: 3.15, overlap=0.5, flat=1.0, bend=0.0,
                          inner=0.65)),
  "WO": (_woodlouse, dict(len=15, w=5.0, leg=2.6)),
}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Pose and rasterisation


def _rot_z(a: float) -> np.ndarray:  # spin about the tube axis (array axis 0)
  c, s = np.cos(a), np.sin(a)
  return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rot_x(a: float) -> np.ndarray:  # tilt the body axis away from the tube axis
  c, s = np.cos(a), np.sin(a)
  return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _pose(b: _Parts, shape: tuple[int, int, int]) -> tuple[list, list]:
  """Rotates, scales and places the bug in the central part of the tube; world primitives."""
  r = b.rng
  zdim, ydim, xdim = shape
  rot = _rot_z(r.uniform(0, 2 * np.pi)) @ _rot_x(min(abs(r.normal(0, 0.3)), 0.6))
  rot = rot @ _rot_z(r.uniform(0, 2 * np.pi))
  if r.random() < 0.5:  # head down
    rot = rot @ np.diag([-1.0, 1.0, -1.0])
  scale = min(s / ref for s, ref in zip(shape, _REF_SHAPE, strict=True)) * r.uniform(1.2, 1.4)
  ells = [(rot @ c * scale, a * scale, rot @ m, v, i) for c, a, m, v, i in b.ells]
  caps = [(rot @ p0 * scale, rot @ p1 * scale, r0 * scale, r1 * scale, v)
          for p0, p1, r0, r1, v in b.caps]  # fmt: skip
  lo, hi = _extent(ells, caps)
  box_lo = np.array([_BUG_Z[0] * zdim + 0.5, 0.0, 0.0])
  box_hi = np.array([_BUG_Z[1] * zdim - 1.5, ydim - 1.0, xdim - 1.0])
  fit = min(1.0, float(np.min((box_hi - box_lo) / np.maximum(hi - lo, 1e-6))))
  shift = r.uniform(box_lo - lo * fit, np.maximum(box_hi - hi * fit, box_lo - lo * fit))
  ells = [(c * fit + shift, a * fit, m, v, i) for c, a, m, v, i in ells]
  caps = [(p0 * fit + shift, p1 * fit + shift, r0 * fit, r1 * fit, v)
          for p0, p1, r0, r1, v in caps]  # fmt: skip
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


def _rasterise(ells: list, caps: list, shape) -> tuple[np.ndarray, np.ndarray]:
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


# ---------------------------------------------------------------------------------------------
# Cotton


def cotton_params(rng: np.random.Generator, label: int, shortcut_strength: float) -> np.ndarray:
  """[4] (depth, density, brightness, thickness) in [0, 1]: the class signature with
  probability `shortcut_strength` (plus +-0.07 jitter), else uniform, independent of the class."""
  if rng.random() < shortcut_strength:
    return np.clip(_COTTON_SIGNATURES[label] + rng.uniform(-0.07, 0.07, 4), 0.0, 1.0)
  return rng.uniform(0.0, 1.0, 4)


def _cotton(rng, params, shape) -> tuple[np.ndarray, np.ndarray]:
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


# ---------------------------------------------------------------------------------------------
# Public API


def _blur(v: np.ndarray) -> np.ndarray:
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


def _check(shape: tuple[int, int, int], shortcut_strength: float) -> tuple[int, int, int]:
  shape = tuple(int(s) for s in shape)
  if len(shape) != 3 or min(shape) < 8:
    raise UserError(f"shape: {shape} must be three sizes (Z, Y, X), each >= 8")
  if not 0.0 <= shortcut_strength <= 1.0:
    raise UserError(f"shortcut_strength: {shortcut_strength} must be in [0, 1]")
  return shape


def generate_example(
  seed: int, index: int, shape=(64, 32, 32), shortcut_strength: float = 0.5
) -> dict[str, np.ndarray]:
  """Example `index` of the synthetic set with `seed`; label `index % 12`.

  Returns dict(image=uint8 [Z, Y, X, 1], label=int32 [], mask=uint8 [Z, Y, X] (1 on the bug),
  cotton=uint8 [Z, Y, X] (1 on the cotton fibres)).
  """
  shape = _check(shape, shortcut_strength)
  label = index % NUM_CLASSES
  rng = np.random.default_rng([seed, index])
  # Cotton first, so its draws do not depend on how many draws the bug's shape takes.
  cot_mask, cot_val = _cotton(rng, cotton_params(rng, label, shortcut_strength), shape)
  build, params = _BUGS[CLASS_CODES[label]]
  parts = _Parts(rng)
  build(parts, params)
  occ, val = _rasterise(*_pose(parts, shape), shape)
  signal = val * rng.uniform(170, 220)  # tissue intensity: denser than the cotton
  np.maximum(signal, cot_val, out=signal)
  np.maximum(signal, rng.uniform(20, 40), out=signal)  # background
  # Uniform noise is 4x cheaper to draw than normal; the blur below makes it near-Gaussian.
  noise = rng.random(shape, dtype=np.float32)
  noise -= 0.5
  signal += noise * (3.46 * rng.uniform(16, 24))  # sqrt(12) * std
  signal = _blur(signal)
  signal += 0.5  # round, not truncate
  image = np.clip(signal, 0, 255, out=signal).astype(np.uint8)
  return dict(
    image=image[..., None],
    label=np.int32(label),
    mask=(occ >= 0.5).astype(np.uint8),
    cotton=cot_mask.astype(np.uint8),
  )


class SyntheticBugSource:
  """Grain RandomAccessDataSource of synthetic BugNIST-like volumes, generated on access.

  Stateless apart from its arguments, hence thread-safe and picklable.
  """

  def __init__(
    self,
    num_examples: int,
    shape=(64, 32, 32),
    seed: int = 0,
    shortcut_strength: float = 0.5,
  ):
    if num_examples < 1:
      raise UserError(f"num_examples: {num_examples} must be >= 1")
    self.num_examples = int(num_examples)
    self.shape = _check(shape, shortcut_strength)
    self.seed = int(seed)
    self.shortcut_strength = float(shortcut_strength)

  def __len__(self) -> int:
    return self.num_examples

  def __getitem__(self, i: int) -> dict[str, np.ndarray]:
    i = int(i)
    if not -self.num_examples <= i < self.num_examples:
      raise IndexError(f"index {i} out of range for {self.num_examples} examples")
    return generate_example(self.seed, i % self.num_examples, self.shape, self.shortcut_strength)

  def labels(self) -> np.ndarray:
    """int32 [N] labels without generating volumes."""
    return (np.arange(self.num_examples) % NUM_CLASSES).astype(np.int32)

  def __repr__(self) -> str:
    return (
      f"SyntheticBugSource(num_examples={self.num_examples}, shape={self.shape}, "
      f"seed={self.seed}, shortcut_strength={self.shortcut_strength})"
    )
