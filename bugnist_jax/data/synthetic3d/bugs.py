"""Bug shapes: soft ellipsoids and tapered capsules in a bug frame, one builder per class.

Axis 0 of the bug frame is the body axis (head at +), 1 dorsal, 2 lateral. Lengths are in
voxels of the (64, 32, 32) reference grid; `raster.pose` scales them to the volume.
"""

import numpy as np


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


class Parts:
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


def _orthopteran(b: Parts, p: dict) -> None:
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
      b.limb(
        (zl, -w * 0.6, side * w * 0.5),
        [(fwd * 0.3, -0.7, side), (fwd, -0.5, side * 0.4)],
        [p["leg"], p["leg"]],
        [0.6, 0.5],
        v=0.9,
      )
    # Hind legs: a thick femur back along the abdomen, the tibia folded under it.
    knee = b.limb(
      (zt - 2.5, -w * 0.3, side * w * 0.8), [(-1, 0.35, side * 0.35)], [p["femur"]], [p["femur_r"]]
    )
    b.limb(knee, [(1, -0.6, side * 0.1)], [p["tibia"]], [0.6], v=0.9)
    b.cap(
      (z1 + 0.5, 0, side * 0.6),
      (z1 - p["cerci"], 0.3, side * (0.6 + p["cerci"] * 0.3)),
      0.45,
      0.3,
      v=0.85,
    )
    if p["wings"]:
      b.ell((zt - length * 0.3, w * 0.75, side * w * 0.35), (length * 0.36, 0.55, w * 0.6), 0.7)


def _fly(b: Parts, p: dict) -> None:
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
      b.limb(
        (zl, -t[1] * 0.7, side * t[2] * 0.5),
        [(0, -0.5, side), (zl * 0.2, -1, side * 0.3)],
        [p["leg"], p["leg"]],
        [0.55, 0.45],
        v=0.85,
      )
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


def _segmented(b: Parts, p: dict) -> None:
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


def _woodlouse(b: Parts, p: dict) -> None:
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
    b.limb(
      (length / 2, 0.2, side * 1.2),
      [(1, 0.1, side * 0.8), (0.6, 0, side)],
      [2.5, 2.5],
      [0.5, 0.4],
      v=0.85,
    )
    b.cap((-length / 2, 0, side * 1.0), (-length / 2 - 2.0, 0, side * 1.8), 0.5, 0.4, 0.85)


def _pow(base: float, e: float):
  return lambda u: base * max(1 - (2 * u - 1) ** 2, 0.04) ** e


# fmt: off
# Class code -> (builder, parameters). Lengths in voxels of the (64, 32, 32) reference grid.
BUGS = {
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
}
# fmt: on
