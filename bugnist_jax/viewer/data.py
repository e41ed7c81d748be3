"""What the viewer page asks for, computed from a run: every answer is one blob (`blob.py`).

`ViewerData(run)` answers the page's requests by kind (`KINDS`: the request's parameters, in
the order that also names a static export's files). Items are `<split>:<index>` or
`noise:<seed>` (a uniform uint8 noise input, as DeepVisionVR's noise generator). Bad requests
raise `ViewerError` with an HTTP status: 400 for a malformed parameter, 404 for an unknown
item, stage or method. The server serialises the calls (one lock): JAX computes one request at
a time and each item's stages are computed once, on first use, and kept for a few items.
"""

import collections
import dataclasses
import io
import re
import threading

import jax
import jax.numpy as jnp
import numpy as np
import tifffile

from bugnist_jax import compile
from bugnist_jax.attribution import METHODS, Explainer, Options, display_map, methods_for
from bugnist_jax.errors import UserError
from bugnist_jax.log import say
from bugnist_jax.models.contract import SPATIAL
from bugnist_jax.runs import Run
from bugnist_jax.viewer import blob
from bugnist_jax.viewer.featurevis import read_cache
from bugnist_jax.viewer.panels import Panels

# Request kind -> its parameters, in order (the server's query, the export's file names).
KINDS = {
  "manifest": (),
  "items": ("split", "page"),
  "item": ("item",),
  "stage": ("item", "stage"),
  "attribution": ("item", "method", "target"),
  "featurevis": ("stage",),
  "tiff": ("item", "stage"),
}
PAGE_SIZE = 24  # thumbnails per page of the input picker
THUMB = 64  # longest side of a thumbnail
CACHED_ITEMS = 8
NOISE = "noise"
_ITEM = re.compile(r"([A-Za-z][A-Za-z0-9_]*):([0-9]{1,9})")


class ViewerError(Exception):
  """A request the viewer cannot answer: `status` (4xx) and a one-line message."""

  def __init__(self, status: int, message: str):
    super().__init__(message)
    self.status, self.message = status, message


@dataclasses.dataclass
class Item:
  """One input: the image as the model sees it, its label (-1: none) and, once computed, the
  stage blobs, outputs and class probabilities."""

  id: str
  image: np.ndarray  # uint8 [*spatial, C]
  label: int
  x: jax.Array  # normalised [1, *spatial, C]
  blobs: dict[str, bytes] | None = None
  outputs: dict[str, jax.Array] | None = None
  probs: np.ndarray | None = None


def thumbnail(image: np.ndarray) -> np.ndarray:
  """uint8 [*spatial, C] -> uint8 [h, w, C], at most THUMB on its longest side: a 3D volume
  [D, H, W, C] as its side view (max over W, [D, H]: the long tube axis upright)."""
  view = image.max(axis=2) if image.ndim == 4 else image
  step = max(1, -(-max(view.shape[:2]) // THUMB))
  return np.ascontiguousarray(view[::step, ::step])


def method_table(model=None) -> list[dict]:
  """The explain method table as the page lists it: name, sign policy, CAM or not; only the
  methods that apply to `model` when it is given (`learned` needs a saliency branch)."""
  names = METHODS if model is None else methods_for(model)
  return [{"name": n, "sign": METHODS[n].sign, "cam": METHODS[n].cam} for n in names]


def static_key(kind: str, values) -> str:
  """The file name (without .js) of a request in a static export; `source.js` builds the same."""
  return "__".join([kind, *(re.sub(r"[^A-Za-z0-9_.-]", "-", str(v)) for v in values)])


class ViewerData:
  """The viewer's answers for the run `run`; attribution methods read `options`."""

  def __init__(self, run: Run, options: Options | None = None):
    self.run, self.options = run, options or Options()
    self.panels = Panels(run.model)
    self.explainer = Explainer(run.bound(self.options.layer), run.normalization)
    self._predict = compile.jit(lambda x: jax.nn.softmax(self.explainer.f(x), axis=-1))
    self._lock = threading.RLock()
    self._items: collections.OrderedDict[str, Item] = collections.OrderedDict()
    self._attributions: collections.OrderedDict[tuple, bytes] = collections.OrderedDict()
    self.featurevis_caches = self._read_featurevis()

  def _read_featurevis(self) -> dict[str, dict]:
    found = {}
    for stage in self.panels.stages[1:]:
      try:
        cache = read_cache(
          self.run.workdir, stage.name, self.run.model.input_shape, stage.shape[-1]
        )
      except ValueError as e:  # a broken cache should not stop the viewer
        say(f"skipping feature visualisations: {e}")
        continue
      if cache is not None and stage.kind == SPATIAL:
        found[stage.name] = cache
    return found

  def answer(self, kind: str, params: dict[str, str]) -> bytes:
    """The blob for request `kind` with `params` (exactly `KINDS[kind]`)."""
    if kind not in KINDS:
      raise ViewerError(404, f"unknown request {kind!r}; valid: {', '.join(KINDS)}")
    with self._lock:
      return getattr(self, kind)(*(params[p] for p in KINDS[kind]))

  # ---- requests -------------------------------------------------------------------------

  def manifest(self, exported: dict | None = None) -> bytes:
    """The model graph, classes, splits, methods, weight histograms (arrays `w_<stage>_counts`
    and `w_<stage>_edges`). `exported` restricts it to what a static export holds."""
    model = self.run.model
    splits = {n: len(s) for n, s in self.run.dataset.splits.items()}
    meta = {
      "title": self.run.workdir.name,
      "model": type(model).__name__,
      "step": int(self.run.step),
      "ndim": len(model.input_shape),
      "classes": list(self.run.class_names),
      "splits": splits,
      "page_size": PAGE_SIZE,
      "stages": self.panels.describe(),
      "cam_layer": self.explainer.bound.layer,
      "methods": method_table(model),
      "targets": ["predicted", "true"],
      "featurevis": sorted(self.featurevis_caches),
      "static": False,
      "tiff": True,
    }
    if exported:
      meta |= exported | {"static": True}
    arrays = {}
    for name, hist in self.panels.weights.items():
      arrays[f"w_{name}_counts"], arrays[f"w_{name}_edges"] = hist["counts"], hist["edges"]
    return blob.encode(meta, arrays)

  def items(self, split: str, page: str) -> bytes:
    """One page of the input picker: thumbnails uint8 [N, h, w, C], `indices`, `labels`,
    `predictions` (int32 [N]) and `confidence` (float32 [N])."""
    source = self._split(split)
    number = _integer("page", page)
    pages = max(1, -(-len(source) // PAGE_SIZE))
    if number >= pages:
      raise ViewerError(404, f"page: {number} is past the last page ({pages - 1}) of {split}")
    indices = np.arange(number * PAGE_SIZE, min((number + 1) * PAGE_SIZE, len(source)))
    records = self.run.records(split, indices, "item")
    ids = [f"{split}:{i}" for i in indices]
    return self.item_list(ids, records["image"], records["label"], {"split": split, "page": number})

  def item_list(self, ids: list[str], images: np.ndarray, labels, meta: dict) -> bytes:
    """A picker page (or a static export's item list) of items `ids` with uint8 `images`
    [N, *S, C] (N <= PAGE_SIZE) and `labels` (-1: none); meta `ids` names them."""
    padded = np.concatenate([images, np.repeat(images[-1:], PAGE_SIZE - len(images), 0)])
    probs = np.asarray(self._predict(self.run.inputs(padded)))[: len(images)]
    arrays = {
      "thumbs": np.stack([thumbnail(im) for im in images]),
      "labels": np.asarray(labels, np.int32),
      "predictions": probs.argmax(-1).astype(np.int32),
      "confidence": probs.max(-1).astype(np.float32),
    }
    return blob.encode(meta | {"ids": list(ids)}, arrays)

  def item(self, item: str) -> bytes:
    """The input as the model sees it (`image` uint8 [*S, C]), its class probabilities
    (`probs` float32 [K]) and label."""
    it = self._computed(item)
    label_name = self.run.class_names[it.label] if it.label >= 0 else None
    meta = {"item": it.id, "label": it.label, "label_name": label_name}
    return blob.encode(meta, {"image": it.image, "probs": it.probs})

  def stage(self, item: str, stage: str) -> bytes:
    """Panels, scale and activation histogram of `stage` for `item` (`Panels.blobs`)."""
    self._stage(stage)
    return self._computed(item).blobs[stage]

  def attribution(self, item: str, method: str, target: str) -> bytes:
    """Maps of `method` for `item`: `policy` (int8 [*S], `display_map`: the method's own
    sign policy) and, unless the same, `signed` (channels summed with their signs), each with
    its scale; `target` is 'predicted', 'true' or a class index."""
    if method not in METHODS:
      raise ViewerError(404, f"method: unknown {method!r}; valid: {', '.join(METHODS)}")
    it = self._computed(item)
    cls = self._target(it, target)
    key = (it.id, method, cls)
    if key not in self._attributions:
      maps = self.explainer(method, it.x, jnp.asarray([cls]), self.options)
      policy, policy_scale = blob.quantize(display_map(method, maps)[0])
      arrays, meta = {"policy": policy}, {"policy_scale": policy_scale}
      if METHODS[method].sign == "absolute" and not METHODS[method].cam:
        arrays["signed"], meta["signed_scale"] = blob.quantize(display_map(method, maps, True)[0])
      meta |= {"method": method, "sign": METHODS[method].sign, "target": cls}
      meta["target_name"] = self.run.class_names[cls]
      self._attributions[key] = blob.encode(meta, arrays)
      _trim(self._attributions, 4 * CACHED_ITEMS)
    return self._attributions[key]

  def featurevis(self, stage: str) -> bytes:
    """The cached feature visualisations of `stage`: `images` uint8 [N, *S, C], `channels`."""
    self._stage(stage)
    if stage not in self.featurevis_caches:
      raise ViewerError(404, f"stage: no feature visualisations cached for {stage!r}")
    cache = self.featurevis_caches[stage]
    meta = {"stage": stage, "objective": cache["objective"]}
    return blob.encode(meta, {"images": cache["images"], "channels": cache["channels"]})

  def tiff(self, item: str, stage: str) -> bytes:
    """An ImageJ hyperstack (ZCYX, float32, the real values) of a 3D spatial stage's output."""
    info = self._stage(stage)
    if info.kind != SPATIAL or len(info.shape) != 4:
      raise ViewerError(400, f"stage: {stage!r} is not a 3D feature map (TIFF is for 3D stages)")
    values = np.asarray(self._computed(item).outputs[stage][0], np.float32)  # [D, H, W, C]
    out = io.BytesIO()
    labels = [f"c{c}" for _ in range(values.shape[0]) for c in range(values.shape[-1])]
    data = np.ascontiguousarray(np.moveaxis(values, -1, 1))
    tifffile.imwrite(out, data, imagej=True, metadata={"axes": "ZCYX", "Labels": labels})
    return out.getvalue()

  # ---- helpers --------------------------------------------------------------------------

  def _split(self, split: str):
    if split not in self.run.dataset.splits:
      valid = ", ".join(self.run.dataset.splits)
      raise ViewerError(404, f"split: unknown {split!r}; valid: {valid}")
    return self.run.dataset.splits[split]

  def _stage(self, stage: str):
    if stage not in self.panels.by_name:
      valid = ", ".join(self.panels.by_name)
      raise ViewerError(404, f"stage: unknown {stage!r}; valid: {valid}")
    return self.panels.by_name[stage]

  def _target(self, it: Item, target: str) -> int:
    if target == "predicted":
      return int(it.probs.argmax())
    if target == "true":
      if it.label < 0:
        raise ViewerError(400, f"target: {it.id} is a noise input and has no true class")
      return it.label
    cls = _integer("target", target, "'predicted', 'true' or a class index")
    if cls >= len(self.run.class_names):
      raise ViewerError(400, f"target: class {cls} >= the {len(self.run.class_names)} classes")
    return cls

  def resolve(self, item: str) -> Item:
    """The item named `item`, cached; ViewerError for a malformed or unknown one."""
    if item in self._items:
      self._items.move_to_end(item)
      return self._items[item]
    match = _ITEM.fullmatch(item)
    if not match:
      raise ViewerError(400, f"item: {item[:80]!r} is not <split>:<index> or {NOISE}:<seed>")
    split, index = match.group(1), int(match.group(2))
    if split == NOISE:
      shape = (*self.run.model.input_shape, self.run.model.in_channels)
      image, label = np.random.default_rng(index).integers(0, 256, shape, np.uint8), -1
    else:
      source = self._split(split)
      if index >= len(source):
        raise ViewerError(404, f"item: {split} has {len(source)} items, no {index}")
      try:
        records = self.run.records(split, [index], "item")
      except UserError as e:
        raise ViewerError(404, str(e)) from None
      image, label = records["image"][0], int(records["label"][0])
    it = Item(item, image, label, jnp.asarray(self.run.inputs(image[None])))
    self._items[item] = it
    _trim(self._items, CACHED_ITEMS)
    return it

  def _computed(self, item: str) -> Item:
    it = self.resolve(item)
    if it.blobs is None:
      it.outputs, summaries = self.panels.summaries(it.x)
      it.blobs = {name: self.panels.encode(name, s) for name, s in summaries.items()}
      logits = it.outputs[self.run.model.layer_names[-1]][0].astype(jnp.float32)
      it.probs = np.asarray(jax.nn.softmax(logits), np.float32)
    return it


def _integer(name: str, value: str, expected: str = "a non-negative integer") -> int:
  if not re.fullmatch(r"[0-9]{1,9}", value):
    raise ViewerError(400, f"{name}: {value[:40]!r} is not {expected}")
  return int(value)


def _trim(cache: collections.OrderedDict, size: int) -> None:
  while len(cache) > size:
    cache.popitem(last=False)
