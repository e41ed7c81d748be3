"""Embedded synthetic 2D images: five procedurally drawn object classes on cluttered backgrounds.

The default data of the 2D (Caltech-101 study) configs: no download, generated on the fly.
The classes stand in for the study's Caltech-101 subset, with the same names and a shape that
recalls each:
  bonsai     a tree: trunk, recursive branches, green leaf clumps, a pot
  hawksbill  a turtle seen from above: oval shell with plate lines, head, four flippers
  menorah    a candelabrum: stem, base, nested arms of candles with flames
  scorpion   a segmented body with a tail curling over it, two pincers, legs
  sunflower  a flower: dark disc with a ring of petals, a stem

Backgrounds are clutter: a smooth random colour gradient, pixel noise and random distractor
strokes and blobs (also in object-like colours), so the object must be told by its shape.
Objects get random position, scale, rotation (up to +-30 degrees) and colour jitter.

Records: image uint8 [H, W, 3], label int32 (index % 5), object_mask uint8 [H, W] (1 on the
object), object_box int32 [4] = (y0, x0, y1, x1) of the mask, y1/x1 exclusive. Example `i` of
seed `s` is drawn from `np.random.default_rng([s, i])`, so it is the same whatever the order of
access.
Drawing works in coordinates relative to the image size: 64x64 and 224x224 look alike.

Options: `classes` draws a subset of the five (labels 0..k-1 in that order; the transfer
experiments pretrain on some classes and fine-tune on others); `shortcut_patch` > 0 adds a
DecoyMNIST-like confound: a small square in a random corner whose colour is the label's
(`PATCH_COLORS`) with that probability and a random label's otherwise, recorded as
`shortcut_mask` (and cut out of `object_mask` where it covers the object).
"""

import numpy as np

from bugnist_jax.data.sources import IndexedSource
from bugnist_jax.errors import UserError

CLASS_NAMES: tuple[str, ...] = ("bonsai", "hawksbill", "menorah", "scorpion", "sunflower")
NUM_CLASSES = len(CLASS_NAMES)
# The shortcut patch's colour per label (saturated, unlike the objects' and distractors').
PATCH_COLORS = ((1.0, 0.0, 0.0), (0.0, 0.9, 0.0), (0.0, 0.2, 1.0), (1.0, 0.0, 1.0), (0.0, 1.0, 1.0))


class _Canvas:
  """A float RGB image [H, W, 3] in [0, 1] and an object mask, drawn with soft-edged shapes.

  Shapes are given in unit coordinates (0..1 across the image) and mapped through a similarity
  transform (scale, rotation, shift) when `obj=True`, else drawn where they are.
  """

  def __init__(self, shape: tuple[int, int]):
    self.h, self.w = shape
    self.size = float(min(shape))
    self.img = np.zeros((self.h, self.w, 3), np.float32)
    self.mask = np.zeros((self.h, self.w), np.float32)
    self.transform = (1.0, 0.0, np.array([0.5, 0.5]), np.array([0.5, 0.5]))

  def set_transform(self, scale: float, angle: float, center) -> None:
    """Object frame: unit point p -> center + scale * R(angle) (p - 0.5)."""
    self.transform = (scale, angle, np.asarray(center, float), np.array([0.5, 0.5]))

  def _to_pixels(self, p, obj: bool) -> np.ndarray:
    p = np.asarray(p, float)
    if obj:
      s, a, c, o = self.transform
      rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
      p = c + s * (p - o) @ rot.T
    return p * self.size  # (y, x) in pixels

  def _scale(self, r: float, obj: bool) -> float:
    return r * self.size * (self.transform[0] if obj else 1.0)

  def _paint(self, ys: slice, xs: slice, cover: np.ndarray, color, obj: bool) -> None:
    cover = np.clip(cover, 0.0, 1.0)
    region = self.img[ys, xs]
    region += (np.asarray(color, np.float32) - region) * cover[..., None]
    if obj:
      np.maximum(self.mask[ys, xs], cover, out=self.mask[ys, xs])
    elif cover.any():  # background drawn over the object hides it
      self.mask[ys, xs] *= 1.0 - cover

  def _window(self, lo, hi) -> tuple[slice, slice, np.ndarray, np.ndarray] | None:
    y0, x0 = max(int(np.floor(lo[0])), 0), max(int(np.floor(lo[1])), 0)
    y1, x1 = min(int(np.ceil(hi[0])) + 1, self.h), min(int(np.ceil(hi[1])) + 1, self.w)
    if y0 >= y1 or x0 >= x1:
      return None
    # Open grids [n, 1] and [1, m]: the shape maths broadcasts, at a fraction of the cost.
    yy = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5
    xx = np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5
    return slice(y0, y1), slice(x0, x1), yy, xx

  def capsule(self, p0, p1, r0: float, r1: float | None = None, color=(1, 1, 1), obj=True):
    """A stroke from p0 to p1 whose radius goes from r0 to r1 (unit coordinates)."""
    a, b = self._to_pixels(p0, obj), self._to_pixels(p1, obj)
    ra = max(self._scale(r0, obj), 0.5)
    rb = max(self._scale(r0 if r1 is None else r1, obj), 0.5)
    pad = max(ra, rb) + 1
    win = self._window(np.minimum(a, b) - pad, np.maximum(a, b) + pad)
    if win is None:
      return
    ys, xs, yy, xx = win
    d = b - a
    t = np.clip(((yy - a[0]) * d[0] + (xx - a[1]) * d[1]) / max(d @ d, 1e-9), 0.0, 1.0)
    dist = np.hypot(yy - a[0] - t * d[0], xx - a[1] - t * d[1])
    self._paint(ys, xs, ra + (rb - ra) * t - dist + 0.5, color, obj)

  def ellipse(self, c, radii, angle: float = 0.0, color=(1, 1, 1), obj=True, ring: float = 0.0):
    """A filled ellipse (or, with ring > 0, an elliptic ring of that relative thickness)."""
    cp = self._to_pixels(c, obj)
    ry, rx = self._scale(radii[0], obj), self._scale(radii[1], obj)
    if obj:
      angle += self.transform[1]
    pad = max(ry, rx) + 1
    win = self._window(cp - pad, cp + pad)
    if win is None:
      return
    ys, xs, yy, xx = win
    dy, dx = yy - cp[0], xx - cp[1]
    u = dy * np.cos(angle) + dx * np.sin(angle)
    v = -dy * np.sin(angle) + dx * np.cos(angle)
    rho = np.sqrt((u / max(ry, 0.5)) ** 2 + (v / max(rx, 0.5)) ** 2)
    edge = (1.0 - rho) * min(ry, rx) + 0.5  # ~ signed distance in pixels
    if ring > 0:
      edge = np.minimum(edge, (rho - (1.0 - ring)) * min(ry, rx) + 0.5)
    self._paint(ys, xs, edge, color, obj)


def _jitter(rng: np.random.Generator, color, amount: float = 0.12) -> np.ndarray:
  return np.clip(np.asarray(color, float) + rng.uniform(-amount, amount, 3), 0.0, 1.0)


def _bonsai(cv: _Canvas, rng: np.random.Generator) -> None:
  bark, leaf = _jitter(rng, (0.4, 0.25, 0.12)), _jitter(rng, (0.2, 0.55, 0.18))
  cv.capsule((0.92, 0.3), (0.92, 0.7), 0.05, color=_jitter(rng, (0.55, 0.3, 0.2)))  # the pot
  tips = []

  def branch(p, angle, length, radius, depth):
    q = p + length * np.array([-np.cos(angle), np.sin(angle)])
    cv.capsule(p, q, radius, radius * 0.7, bark)
    if depth == 0:
      tips.append(q)
      return
    for turn in (-1, 1):
      branch(
        q,
        angle + turn * rng.uniform(0.35, 0.8),
        length * rng.uniform(0.6, 0.8),
        radius * 0.7,
        depth - 1,
      )

  branch(np.array([0.88, 0.5]), rng.uniform(-0.2, 0.2), 0.25, 0.035, 3)
  for t in tips:
    cv.ellipse(t, np.array([0.06, 0.08]) * rng.uniform(0.8, 1.2), rng.uniform(0, np.pi), leaf)


def _hawksbill(cv: _Canvas, rng: np.random.Generator) -> None:
  shell, skin = _jitter(rng, (0.5, 0.32, 0.15)), _jitter(rng, (0.6, 0.55, 0.4))
  for side in (-1, 1):
    for dy in (-0.15, 0.17):
      cv.ellipse((0.5 + dy, 0.5 + side * 0.27), (0.05, 0.14), side * np.sign(dy) * 0.6, skin)
  cv.ellipse((0.17, 0.5), (0.08, 0.065), 0.0, skin)  # head
  cv.ellipse((0.5, 0.5), (0.3, 0.22), 0.0, shell)
  plate = shell * 0.55
  cv.ellipse((0.5, 0.5), (0.3, 0.22), 0.0, plate, ring=0.12)
  for y in (0.38, 0.5, 0.62):
    cv.capsule((y, 0.36), (y, 0.64), 0.008, color=plate)
  cv.capsule((0.25, 0.5), (0.75, 0.5), 0.008, color=plate)


def _menorah(cv: _Canvas, rng: np.random.Generator) -> None:
  metal = _jitter(rng, (0.8, 0.65, 0.25))
  flame = _jitter(rng, (1.0, 0.85, 0.3), 0.05)
  top = 0.3
  cv.capsule((0.85, 0.5), (top, 0.5), 0.02, color=metal)  # stem
  cv.capsule((0.88, 0.38), (0.88, 0.62), 0.025, color=metal)  # base
  pairs = int(rng.integers(2, 4))
  for k in range(1, pairs + 1):
    r = 0.33 * k / pairs
    t = np.linspace(0, np.pi, 9)
    pts = np.stack([top + r * 0.8 * np.sin(t), 0.5 + r * np.cos(t)], axis=1)
    for a, b in zip(pts[:-1], pts[1:], strict=True):
      cv.capsule(a, b, 0.015, color=metal)
    for side in (-1, 1):
      cv.capsule((top, 0.5 + side * r), (top - 0.1, 0.5 + side * r), 0.012, color=metal)
      cv.ellipse((top - 0.14, 0.5 + side * r), (0.035, 0.018), 0.0, flame)
  cv.capsule((top, 0.5), (top - 0.1, 0.5), 0.012, color=metal)
  cv.ellipse((top - 0.14, 0.5), (0.035, 0.018), 0.0, flame)


def _scorpion(cv: _Canvas, rng: np.random.Generator) -> None:
  body = _jitter(rng, (0.25, 0.2, 0.12), 0.1)
  for side in (-1, 1):
    for k in range(4):  # legs
      y = 0.45 + 0.06 * k
      cv.capsule((y, 0.5), (y + 0.05, 0.5 + side * 0.22), 0.008, color=body)
    claw = np.array([0.22, 0.5 + side * 0.2])
    cv.capsule((0.36, 0.5 + side * 0.05), claw, 0.015, color=body)
    cv.ellipse(claw, (0.06, 0.035), side * 0.4, body)
    cv.capsule(claw, claw + (-0.08, side * 0.02), 0.01, color=body)
  for k in range(6):  # segmented body
    cv.ellipse((0.36 + 0.05 * k, 0.5), (0.035, 0.07 - 0.004 * k), 0.0, body)
  # tail: a chain of shrinking segments curling up and over the back
  curl = rng.uniform(0.7, 1.0)
  angle, p = 0.0, np.array([0.64, 0.5])
  for k in range(6):
    q = p + 0.07 * np.array([np.cos(angle), np.sin(angle) * 1.3])
    cv.capsule(p, q, 0.028 - 0.003 * k, 0.024 - 0.003 * k, body)
    p, angle = q, angle + curl * 0.55
  cv.ellipse(p, (0.03, 0.02), angle, body * 0.6)


def _sunflower(cv: _Canvas, rng: np.random.Generator) -> None:
  petal, disc = _jitter(rng, (0.98, 0.8, 0.1), 0.08), _jitter(rng, (0.3, 0.18, 0.05), 0.08)
  cv.capsule((0.55, 0.5), (1.0, 0.52), 0.02, color=_jitter(rng, (0.25, 0.5, 0.15)))  # stem
  n = int(rng.integers(10, 16))
  for k in range(n):
    a = 2 * np.pi * k / n + rng.uniform(-0.1, 0.1)
    c = np.array([0.4, 0.5]) + 0.19 * np.array([np.sin(a), np.cos(a)])
    cv.ellipse(c, (0.11, 0.04), np.pi / 2 - a, petal)
  cv.ellipse((0.4, 0.5), (0.12, 0.12), 0.0, disc)
  cv.ellipse((0.4, 0.5), (0.12, 0.12), 0.0, disc * 0.6, ring=0.3)


_DRAW = (_bonsai, _hawksbill, _menorah, _scorpion, _sunflower)
# Object colours reused for distractor strokes, so colour alone does not give the class away.
_PALETTE = (
  (0.4, 0.25, 0.12),
  (0.2, 0.55, 0.18),
  (0.5, 0.32, 0.15),
  (0.8, 0.65, 0.25),
  (0.25, 0.2, 0.12),
  (0.98, 0.8, 0.1),
)


def _background(cv: _Canvas, rng: np.random.Generator) -> None:
  """Smooth colour gradient plus random strokes and blobs (drawn before and after the object)."""
  c0, c1 = (rng.uniform(0.15, 0.85, 3).astype(np.float32) for _ in range(2))
  a = rng.uniform(0, 2 * np.pi)
  yy = np.arange(cv.h, dtype=np.float32)[:, None] / cv.size
  xx = np.arange(cv.w, dtype=np.float32)[None, :] / cv.size
  t = np.clip((np.cos(a) * yy + np.sin(a) * xx) / 1.4 + 0.25, 0, 1)[..., None]
  cv.img[:] = (c0 + (c1 - c0) * t).astype(np.float32)
  _distractors(cv, rng, int(rng.integers(4, 9)))


def _distractors(cv: _Canvas, rng: np.random.Generator, n: int) -> None:
  for _ in range(n):
    color = _jitter(rng, _PALETTE[rng.integers(len(_PALETTE))], 0.2)
    p = rng.uniform(0, 1, 2)
    if rng.random() < 0.7:
      cv.capsule(p, p + rng.normal(0, 0.18, 2), rng.uniform(0.004, 0.02), color=color, obj=False)
    else:
      cv.ellipse(p, rng.uniform(0.02, 0.07, 2), rng.uniform(0, np.pi), color, obj=False)


def _patch(cv: _Canvas, rng: np.random.Generator, label: int, strength: float) -> np.ndarray:
  """Paints the shortcut patch in a random corner; returns its mask uint8 [H, W]."""
  side = max(2, int(min(cv.h, cv.w)) // 8)
  told = label if rng.random() < strength else int(rng.integers(len(PATCH_COLORS)))
  y = 1 if rng.random() < 0.5 else cv.h - side - 1
  x = 1 if rng.random() < 0.5 else cv.w - side - 1
  cv.img[y : y + side, x : x + side] = PATCH_COLORS[told % len(PATCH_COLORS)]
  mask = np.zeros((cv.h, cv.w), np.uint8)
  mask[y : y + side, x : x + side] = 1
  return mask


def generate_example(
  seed: int,
  index: int,
  shape: tuple[int, int] = (224, 224),
  *,
  kind: int | None = None,
  label: int | None = None,
  shortcut_patch: float = 0.0,
) -> dict:
  """Example `index` of seed `seed`: dict(image uint8 [H, W, 3], label, object_mask,
  object_box, and shortcut_mask [H, W] when `shortcut_patch` > 0). `kind` is the class drawn
  (default index % 5) and `label` the label recorded (default `kind`)."""
  rng = np.random.default_rng([seed, index])
  kind = index % NUM_CLASSES if kind is None else int(kind)
  label = kind if label is None else int(label)
  cv = _Canvas(shape)
  _background(cv, rng)
  scale = rng.uniform(0.6, 0.85)
  center = rng.uniform(0.38, 0.62, 2) * np.array([cv.h, cv.w]) / cv.size
  cv.set_transform(scale, rng.uniform(-np.pi / 6, np.pi / 6), center)
  _DRAW[kind](cv, rng)
  _distractors(cv, rng, int(rng.integers(0, 3)))  # a few strokes cross the object
  extra = {}
  if shortcut_patch > 0:
    extra["shortcut_mask"] = _patch(cv, rng, label, shortcut_patch)
    cv.mask[extra["shortcut_mask"] > 0] = 0
  img = cv.img + 0.04 * rng.standard_normal(cv.img.shape, dtype=np.float32)
  mask = (cv.mask > 0.5).astype(np.uint8)
  ys, xs = np.nonzero(mask)
  box = (
    np.array([ys.min(), xs.min(), ys.max() + 1, xs.max() + 1], np.int32)
    if ys.size
    else np.zeros(4, np.int32)
  )
  return dict(
    image=np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8),
    label=np.int32(label),
    object_mask=mask,
    object_box=box,
    **extra,
  )


class Synthetic2DSource(IndexedSource):
  """Grain RandomAccessDataSource of `num_examples` synthetic images of `shape` (H, W)."""

  def __init__(
    self,
    num_examples: int,
    shape: tuple[int, int] = (224, 224),
    seed: int = 0,
    classes: tuple[str, ...] = CLASS_NAMES,
    shortcut_patch: float = 0.0,
  ):
    if num_examples < 1:
      raise UserError(f"num_examples: must be positive, got {num_examples}")
    if len(shape) != 2 or min(shape) < 16:
      raise UserError(f"shape: synthetic2d needs (H, W) >= 16, got {tuple(shape)}")
    unknown = [c for c in classes if c not in CLASS_NAMES]
    if unknown or not classes:
      raise UserError(f"classes: unknown {unknown[:1]}; valid: {', '.join(CLASS_NAMES)}")
    if not 0.0 <= shortcut_patch <= 1.0:
      raise UserError(f"shortcut_patch: {shortcut_patch}, expected a number in [0, 1]")
    self.num_examples, self.shape, self.seed = int(num_examples), tuple(map(int, shape)), int(seed)
    self.classes, self.shortcut_patch = tuple(classes), float(shortcut_patch)
    self._kinds = [CLASS_NAMES.index(c) for c in self.classes]

  def record(self, i: int) -> dict:
    label = i % len(self.classes)
    return generate_example(
      self.seed,
      i,
      self.shape,
      kind=self._kinds[label],
      label=label,
      shortcut_patch=self.shortcut_patch,
    )

  def labels(self) -> np.ndarray:
    """int32 [N]: index % (number of classes), without drawing anything."""
    return (np.arange(self.num_examples) % len(self.classes)).astype(np.int32)

  def __repr__(self) -> str:
    return (
      f"Synthetic2DSource(num_examples={self.num_examples}, shape={self.shape}, seed={self.seed}"
      f", classes={self.classes}, shortcut_patch={self.shortcut_patch})"
    )
