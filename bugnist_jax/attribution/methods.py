"""Every saliency method by name on a bound model: the table explain, look_inside, the studies
and the viewer share, its options, and the one policy for showing maps.

`saliency` stays model-agnostic; a method here runs on an `adapters.Bound` (the model as
functions). Each `Method` declares the `Options` fields it reads, so a method is compiled once
per value of those fields and the tests can run every method through every command.
"""

import dataclasses
from collections.abc import Callable

import jax
import numpy as np

from bugnist_jax import compile, saliency
from bugnist_jax.attribution.baselines import BASELINES, IDENTITY, baseline, intensity_bounds
from bugnist_jax.data.transforms import Normalization
from bugnist_jax.errors import UserError
from bugnist_jax.models import planes
from bugnist_jax.models.adapters import Bound
from bugnist_jax.models.saliency_branch import BRANCH, saliency_map
from bugnist_jax.options import option
from bugnist_jax.progress import Progress


@dataclasses.dataclass(frozen=True)
class Options:
  """Knobs of the methods (each method reads the ones it declares)."""

  num_samples: int = option(25, "SmoothGrad noisy copies.", min=1)
  sigma: float = option(
    0.15, "SmoothGrad noise, a fraction of each input's (max - min).", above=0.0
  )
  steps: int = option(32, "Integrated Gradients / IS-CAM steps.", min=1)
  batch_size: int | None = option(
    None, "Samples run at once (sets peak memory, not the result).", min=1
  )
  window: int = option(8, "Occlusion window (voxels per axis).", min=1)
  stride: int = option(4, "Occlusion stride (at most the window).", min=1)
  layer: str | None = option(None, "Layer for CAM methods (default: the model's cam_layer).")
  seed: int = option(0, "Seed for SmoothGrad noise and the random items.")
  baseline: str = option(
    "mean",
    "Baseline of IG, occlusion, Gradient SHAP, feature ablation and the deletion/insertion "
    "curves: 'mean' = raw intensity of the training mean (model input 0), 'zero' = raw "
    "intensity 0, 'blur' = the input blurred (--blur_sigma voxels), 'noise' = uniform raw "
    "intensities 0..255.",
    choices=BASELINES,
  )
  blur_sigma: float = option(5.0, "Blur of the 'blur' baseline (voxels).", above=0.0)
  lrp_rule: str = option(
    "epsilon_plus",
    "LRP rule or composite (zbox composite: inputs bounded by raw intensities 0 and 255).",
    choices=saliency.LRP_RULES + saliency.LRP_COMPOSITES,
  )
  score_cam_convention: str = option(
    "reference",
    "Score-CAM/IS-CAM weights: 'reference' (authors' code: target probability), 'grad_cam' "
    "(pytorch-grad-cam: softmax over channels of the target logit).",
    choices=saliency.SCORE_CAM_CONVENTIONS,
  )

  def __post_init__(self):
    if self.stride > self.window:
      raise UserError(
        f"--stride: {self.stride} is larger than --window {self.window}: some "
        "voxels would be in no occlusion window"
      )


@dataclasses.dataclass(frozen=True)
class Method:
  """How to run one method, which options it reads and how to show its maps."""

  run: Callable  # (bound, x, targets, opts, normalization) -> maps
  sign: str  # 'absolute' for magnitude-only maps, 'all' to show signs
  reads: tuple[str, ...] = ()  # the Options fields it depends on
  cam: bool = False  # maps are [B, *spatial] already (no channel axis)
  needs: str | None = None  # a branch the model must have (see `methods_for`)


def _on_f(fn):
  return lambda b, x, t, o, n: fn(b.f, x, t)


def _rewriting(run):
  """`run(b, x, t, o, n)` of a method that rewrites the traced model (LRP, guided backprop):
  the jaxpr interpreters enter custom-VJP calls, so the model is traced with XLA's convolutions
  (`planes.reference()`), not the CPU kernels' unrolled primal (35 s instead of 4 for guided
  backprop on the test run; 10 minutes instead of 1.4 s for LRP on a 16^3 BugCNN3D). Fresh
  functions: jax's trace caches do not know the context, and b's may have been traced outside
  it at this shape."""

  def in_reference(b, x, t, o, n):
    fresh = dataclasses.replace(
      b, f=lambda v: b.f(v), features=lambda v: b.features(v), head=lambda a: b.head(a)
    )
    with planes.reference():
      return run(fresh, x, t, o, n)

  return in_reference


def _on_split(fn, *option_names, **renamed):
  """fn(features, head, x, t, **options): `renamed` maps fn's keyword to an Options field."""
  names = {**{k: k for k in option_names}, **renamed}
  return lambda b, x, t, o, n: fn(
    b.features, b.head, x, t, **{k: getattr(o, v) for k, v in names.items()}
  )


_BASE = ("baseline", "blur_sigma", "seed")  # what a baseline array depends on


def _base(x, o, n, draws=1):
  return baseline(o.baseline, x, n, o.blur_sigma, o.seed, draws)


def _smoothgrad(kind):
  def run(b, x, t, o, n):
    return saliency.smoothgrad(
      b.f,
      x,
      t,
      key=jax.random.key(o.seed),
      num_samples=o.num_samples,
      sigma=o.sigma,
      batch_size=o.batch_size,
      kind=kind,
    )

  return Method(run, "absolute", ("num_samples", "sigma", "batch_size", "seed"))


def _integrated_gradients(b, x, t, o, n):
  base = _base(x, o, n)[0]
  return saliency.integrated_gradients(
    b.f, x, t, baseline=base, steps=o.steps, batch_size=o.batch_size
  )


def _occlusion(b, x, t, o, n):
  return saliency.occlusion(
    b.f, x, t, window=o.window, stride=o.stride, baseline=_base(x, o, n)[0], batch_size=o.batch_size
  )


def _gradient_shap(b, x, t, o, n):
  draws = 8 if o.baseline == "noise" else 1
  return saliency.gradient_shap(
    b.f,
    x,
    t,
    baselines=_base(x, o, n, draws),
    key=jax.random.key(o.seed),
    num_samples=o.num_samples,
    batch_size=o.batch_size,
  )


def _feature_ablation(b, x, t, o, n):
  ids, count = saliency.block_mask(x.shape[1:-1], o.window)
  return saliency.feature_ablation(
    b.f,
    x,
    t,
    feature_mask=ids,
    num_features=count,
    baseline=_base(x, o, n)[0],
    batch_size=o.batch_size,
  )


def _lrp(b, x, t, o, n):
  low, high = intensity_bounds(n, x.dtype)
  return saliency.lrp(b.f, x, t, rule=o.lrp_rule, low=low, high=high)


def _eigen_cam(b, x, t, o, n):
  return saliency.eigen_cam(b.features, x)


def _cam(fn, *option_names, **renamed):
  reads = ("layer", *option_names, *renamed.values())
  return Method(_on_split(fn, *option_names, **renamed), "all", reads, cam=True)


def _learned(b, x, t, o, n):
  """The saliency branch's own map in [0, 1] (class-agnostic: the targets are not read)."""
  del t, o, n
  _, outputs = b.forward(x)
  if BRANCH not in outputs:
    raise ValueError(
      "the model has no saliency branch (train with config.saliency_branch.decoder set)"
    )
  return saliency_map(outputs)


METHODS: dict[str, Method] = {
  "vanilla_gradient": Method(_on_f(saliency.vanilla_gradient), "absolute"),
  "input_x_gradient": Method(_on_f(saliency.input_x_gradient), "all"),
  "smoothgrad": _smoothgrad("smoothgrad"),
  "smoothgrad_sq": _smoothgrad("smoothgrad_sq"),
  "vargrad": _smoothgrad("vargrad"),
  "integrated_gradients": Method(_integrated_gradients, "all", ("steps", "batch_size", *_BASE)),
  "occlusion": Method(_occlusion, "all", ("window", "stride", "batch_size", *_BASE)),
  "gradient_shap": Method(_gradient_shap, "all", ("num_samples", "batch_size", *_BASE)),
  "feature_ablation": Method(_feature_ablation, "all", ("window", "batch_size", *_BASE)),
  "lrp": Method(_rewriting(_lrp), "all", ("lrp_rule",)),
  "guided_backprop": Method(_rewriting(_on_f(saliency.guided_backprop)), "absolute"),
  "guided_grad_cam": Method(
    _rewriting(_on_split(saliency.guided_grad_cam)), "absolute", ("layer",)
  ),
  "grad_cam": _cam(saliency.grad_cam),
  "grad_cam_plus_plus": _cam(saliency.grad_cam_plus_plus),
  "layer_cam": _cam(saliency.layer_cam),
  "score_cam": _cam(saliency.score_cam, "batch_size", convention="score_cam_convention"),
  "is_cam": _cam(saliency.is_cam, "steps", "batch_size", convention="score_cam_convention"),
  "x_grad_cam": _cam(saliency.x_grad_cam),
  "hires_cam": _cam(saliency.hires_cam),
  "grad_cam_elementwise": _cam(saliency.grad_cam_elementwise),
  "ablation_cam": _cam(saliency.ablation_cam, "batch_size"),
  "eigen_cam": Method(_eigen_cam, "all", ("layer",), cam=True),
  "learned": Method(_learned, "absolute", cam=True, needs=BRANCH),
}


def methods_for(model) -> tuple[str, ...]:
  """The METHODS that apply to `model` (a StagedModel): all but those needing a branch it
  lacks (`learned` needs the saliency branch)."""
  branches = getattr(model, "branches", {})
  return tuple(n for n, m in METHODS.items() if m.needs is None or m.needs in branches)


def check_methods(names, flag: str = "--method") -> tuple[str, ...]:
  """`names` if each is in METHODS; else a UserError naming `flag` and the valid names."""
  unknown = [m for m in names if m not in METHODS]
  if unknown:
    raise UserError(f"{flag}: unknown {unknown[0]!r}; valid: {', '.join(METHODS)}")
  return tuple(names)


def run_method(
  bound: Bound, method: str, x, targets, opts: Options, normalization: Normalization | None = None
):
  """Maps of `method` (traceable): [B, *spatial, C], or [B, *spatial] for CAMs. Baselines
  named in raw intensity use `normalization` (the run's; None: inputs are intensity / 255)."""
  return METHODS[method].run(bound, x, targets, opts, normalization or IDENTITY)


class Explainer:
  """Runs methods by name on a bound model, each compiled once per value of the options it
  reads (`compile.jit`: the methods are jitted themselves, the options apply at the top).
  `normalization` is the run's, for baselines named in raw intensity."""

  def __init__(self, bound: Bound, normalization: Normalization | None = None):
    self.bound = bound
    self.f = bound.f
    self.normalization = normalization or IDENTITY
    self._compiled = {}

  def __call__(self, method: str, x, targets, opts: Options) -> np.ndarray:
    """Maps of `method` for inputs x [B, *spatial, C]: [B, *spatial, C] or CAMs [B, *spatial]."""
    check_methods([method], "method")
    key = (method, tuple(getattr(opts, n) for n in METHODS[method].reads))
    if key not in self._compiled:
      self._compiled[key] = compile.jit(
        lambda x, t: run_method(self.bound, method, x, t, opts, self.normalization)
      )
    try:
      return np.asarray(self._compiled[key](x, targets))
    except ValueError as e:  # the saliency package's word on what it cannot handle
      raise UserError(f"method {method}: {e}") from None

  def curves(self, maps, x, targets, opts: Options, num_steps: int) -> dict[str, tuple]:
    """Deletion (MoRF) and insertion curves of display maps `maps [B, *spatial]` of inputs
    `x [B, *spatial, C]` for classes `targets [B]`: `{'deletion': (curve [B, num_steps + 1],
    auc [B]), 'insertion': (...)}`, target probabilities; hidden voxels take `opts.baseline`
    (the same baseline the path and perturbation methods start from)."""
    kw = dict(
      num_steps=num_steps,
      batch_size=opts.batch_size,
      key=jax.random.key(opts.seed),
      baseline_value=_base(x, opts, self.normalization)[0],
    )
    curves = {
      "deletion": saliency.deletion_curve(self.f, x, maps, targets, **kw),
      "insertion": saliency.insertion_curve(self.f, x, maps, targets, **kw),
    }
    return {k: (np.asarray(c), np.asarray(a)) for k, (c, a) in curves.items()}

  def display_in_batches(
    self, method: str, x, targets, opts: Options, batch: int, signed: bool = False
  ) -> np.ndarray:
    """Display maps `[N, *spatial]` (`display_map`) of `method` for x `[N, *spatial, C]`,
    `batch` items at a time, with a progress bar; the last batch is padded by repeating its
    final item, so the method compiles once."""
    out = []
    with Progress(len(x), f"explaining ({method})", unit="item") as bar:
      for start in range(0, len(x), batch):
        xb, tb = np.asarray(x[start : start + batch]), np.asarray(targets[start : start + batch])
        n = len(xb)
        if n < batch:
          xb = np.concatenate([xb, np.repeat(xb[-1:], batch - n, 0)])
          tb = np.concatenate([tb, np.repeat(tb[-1:], batch - n, 0)])
        out.append(display_map(method, self(method, xb, tb, opts), signed)[:n])
        bar.update(n)
    return np.concatenate(out)


def display_map(method: str, maps, signed: bool = False):
  """The one policy for showing maps: [B, *spatial(, C)] -> [B, *spatial].

  Channels are summed; methods whose sign means nothing ('absolute': gradients, SmoothGrad,
  guided backprop) show |.| summed over channels (PAIR saliency's choice: opposite signs on
  R, G and B do not cancel); the others keep their sign. `signed=True` sums channels with
  their signs for every method (the sanity study compares signed and absolute ranks).
  """
  m = METHODS[method]
  if m.cam:
    return maps
  if m.sign == "absolute" and not signed:
    maps = abs(maps)
  return maps.sum(-1)
