"""Any saliency method by name on a staged model: the table `explain` and the studies share.

`saliency` stays model-agnostic; this module binds it to our models through the adapters.
"""

import dataclasses
from collections.abc import Callable

import jax
import numpy as np

from bugnist_jax import saliency
from bugnist_jax.errors import UserError
from bugnist_jax.models import StagedModel
from bugnist_jax.models.adapters import as_function, split_at
from bugnist_jax.models.planes import compiler_options


@dataclasses.dataclass(frozen=True)
class Options:
  """Knobs of the sampling methods (each method reads the ones it needs)."""

  num_samples: int = 25  # smoothgrad family
  sigma: float = 0.15  # smoothgrad noise, fraction of each input's (max - min)
  steps: int = 32  # integrated gradients, IS-CAM
  batch_size: int | None = None  # samples run at once: sets peak memory, not the result
  window: int = 8  # occlusion
  stride: int = 4  # occlusion
  layer: str | None = None  # CAM layer; None: the last layer with spatial axes
  seed: int = 0


@dataclasses.dataclass(frozen=True)
class Method:
  """How to run one method and how to show its maps."""

  run: Callable  # (explainer, x, targets, opts) -> maps
  sign: str  # 'absolute' for magnitude-only maps, 'all' to show signs
  cam: bool = False  # maps are [B, *spatial] already (no channel axis)


def _on_f(fn, **fixed):
  return lambda e, x, t, o: fn(e.f, x, t, **fixed)


def _on_split(fn, *option_names):
  return lambda e, x, t, o: fn(e.features, e.head, x, t, **{n: getattr(o, n) for n in option_names})


def _smoothgrad(kind):
  def run(e, x, t, o):
    return saliency.smoothgrad(
      e.f, x, t, key=jax.random.key(o.seed), num_samples=o.num_samples, sigma=o.sigma,
      batch_size=o.batch_size, kind=kind,
    )  # fmt: skip

  return run


def _integrated_gradients(e, x, t, o):
  return saliency.integrated_gradients(e.f, x, t, steps=o.steps, batch_size=o.batch_size)


def _occlusion(e, x, t, o):
  return saliency.occlusion(e.f, x, t, window=o.window, stride=o.stride, batch_size=o.batch_size)


METHODS: dict[str, Method] = {
  "vanilla_gradient": Method(_on_f(saliency.vanilla_gradient), "absolute"),
  "input_x_gradient": Method(_on_f(saliency.input_x_gradient), "all"),
  "smoothgrad": Method(_smoothgrad("smoothgrad"), "absolute"),
  "smoothgrad_sq": Method(_smoothgrad("smoothgrad_sq"), "absolute"),
  "vargrad": Method(_smoothgrad("vargrad"), "absolute"),
  "integrated_gradients": Method(_integrated_gradients, "all"),
  "occlusion": Method(_occlusion, "all"),
  "guided_backprop": Method(_on_f(saliency.guided_backprop), "absolute"),
  "guided_grad_cam": Method(_on_split(saliency.guided_grad_cam), "absolute"),
  "grad_cam": Method(_on_split(saliency.grad_cam), "all", cam=True),
  "grad_cam_plus_plus": Method(_on_split(saliency.grad_cam_plus_plus), "all", cam=True),
  "layer_cam": Method(_on_split(saliency.layer_cam), "all", cam=True),
  "score_cam": Method(_on_split(saliency.score_cam, "batch_size"), "all", cam=True),
  "is_cam": Method(_on_split(saliency.is_cam, "steps", "batch_size"), "all", cam=True),
}


def default_cam_layer(model: StagedModel, x: jax.Array, min_size: int = 3) -> str:
  """The last stage with spatial output, as Grad-CAM usually takes; but not one so coarse
  (fewer than `min_size` positions along some axis) that its map cannot localise anything."""
  _, outputs = jax.eval_shape(lambda x: model.forward(x), x)
  spatial = [(name, a.shape[1:-1]) for name, a in outputs.items() if len(a.shape) == x.ndim]
  if not spatial:
    raise ValueError("model has no stage with spatial output for a CAM")
  fine = [name for name, shape in spatial if min(shape) >= min_size]
  return fine[-1] if fine else spatial[0][0]


class Explainer:
  """Binds a model once (pure functions, compiled once per method) and runs methods by name.

  Each method runs inside one `jax.jit` with `planes.compiler_options()`, as training does
  (the saliency functions are jitted themselves, and a nested jit takes no options).
  """

  def __init__(self, model: StagedModel, layer: str | None, example: jax.Array):
    self.f = as_function(model)
    self.layer = layer or default_cam_layer(model, example)
    self.features, self.head = split_at(model, self.layer)
    self._compiled = {}

  def __call__(self, method: str, x, targets, opts: Options) -> np.ndarray:
    """Maps of `method` for inputs x [B, *spatial, C]: [B, *spatial, C] or CAMs [B, *spatial]."""
    if method not in METHODS:
      raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
    if (method, opts) not in self._compiled:
      run = lambda x, t: METHODS[method].run(self, x, t, opts)
      self._compiled[method, opts] = jax.jit(run, compiler_options=compiler_options())
    try:
      return np.asarray(self._compiled[method, opts](x, targets))
    except ValueError as e:  # the saliency package's word on what it cannot handle
      raise UserError(f"method {method}: {e}") from None


def display_map(method: str, maps: np.ndarray) -> np.ndarray:
  """[B, *spatial(, C)] -> [B, *spatial] as shown: channels summed, sign as the method wants."""
  m = METHODS[method]
  if not m.cam:
    maps = maps.sum(-1)
  return np.abs(maps) if m.sign == "absolute" else maps
