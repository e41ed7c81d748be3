"""Maps per second of every explain method on one BugCNN3D volume, beside Captum where it has
the method: `python -m benchmarks.methods --shape=128,64,64 --out=benchmarks/out/methods`.

The rows come from `attribution.METHODS` (a method added there is timed with no change here),
run as explain runs them (`run_method`, the run's normalisation, `--baseline` etc.: every
`attribution.Options` field is a flag with explain's default; `learned` on the model with a
saliency branch). `PEERS` names the Captum call of the same method on the same weights
(`torch_reference.from_flax`, NCDHW, eager); runners are timed interleaved
(`measure.run_interleaved`). Writes methods.json and methods.md under --out.
"""

import json
import os
import pathlib
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags
from flax import nnx

from benchmarks import jax_cases
from benchmarks.harness import _jsonable, environment, torch_module
from benchmarks.measure import Runner, run_interleaved
from benchmarks.suites import REAL_MODEL
from bugnist_jax import cli, compile
from bugnist_jax.attribution.baselines import baseline
from bugnist_jax.attribution.methods import METHODS, Options, check_methods, run_method
from bugnist_jax.models import add_saliency_branch
from bugnist_jax.models.adapters import Bound
from bugnist_jax.options import validate


def _captum(name: str, **kw) -> Callable:
  """(model, x, target, baseline, opts) -> attributions, by Captum's class `name`."""

  def call(model, x, target, base, o):
    import captum.attr

    cls = getattr(captum.attr, name)
    args = {k: v(x, base, o) for k, v in kw.items()}
    if name == "NoiseTunnel":
      std = o.sigma * float(x.max() - x.min())  # our sigma is a fraction of (max - min)
      args |= dict(nt_samples=o.num_samples, nt_samples_batch_size=o.batch_size, stdevs=std)
      args["abs"] = False  # Saliency's default takes |g| before the mean
      return cls(captum.attr.Saliency(model)).attribute(x, target=target, **args)
    return cls(model).attribute(x, target=target, **args)

  return call


_WINDOW = lambda x, b, o: (x.shape[1], *(min(o.window, s) for s in x.shape[2:]))
_STRIDE = lambda x, b, o: (1, *(o.stride,) * (x.ndim - 2))
PEERS: dict[str, Callable] = {
  "vanilla_gradient": _captum("Saliency", abs=lambda x, b, o: False),
  "input_x_gradient": _captum("InputXGradient"),
  **{
    kind: _captum("NoiseTunnel", nt_type=lambda x, b, o, kind=kind: kind)
    for kind in ("smoothgrad", "smoothgrad_sq", "vargrad")
  },
  "integrated_gradients": _captum(
    "IntegratedGradients",
    baselines=lambda x, b, o: b,
    n_steps=lambda x, b, o: o.steps,
    internal_batch_size=lambda x, b, o: o.batch_size,
  ),
  "occlusion": _captum(
    "Occlusion",
    sliding_window_shapes=_WINDOW,
    strides=_STRIDE,
    baselines=lambda x, b, o: b,
    perturbations_per_eval=lambda x, b, o: o.batch_size or 1,
  ),
  "gradient_shap": _captum(
    "GradientShap", baselines=lambda x, b, o: b, n_samples=lambda x, b, o: o.num_samples
  ),
  "guided_backprop": _captum("GuidedBackprop"),
}


def _info(method: str, framework: str, shape, opts: Options) -> dict:
  used = {k: getattr(opts, k) for k in METHODS[method].reads}
  return dict(kind="method", method=method, framework=framework, shape=list(shape), options=used)


def jax_runner(method: str, shape: Sequence[int], opts: Options, model_kw: dict) -> Runner:
  """One map of `method` for one volume per call, compiled as explain compiles it."""

  def build():
    model = jax_cases._model(shape, model_kw, "auto", "argmax", "float32")
    if METHODS[method].needs:  # `learned`: the map of the model's own saliency branch
      add_saliency_branch(model, rngs=nnx.Rngs(1))
    bound = Bound.from_model(model)
    x = jnp.asarray(jax_cases.NORMALIZE(jax_cases._data(shape, 1)[0]))
    t = jnp.zeros((1,), jnp.int32)
    jitted = compile.jit(lambda x, t: run_method(bound, method, x, t, opts, jax_cases.NORMALIZE))
    compiled, seconds, info = jax_cases._compile_info(jitted, x, t)
    return lambda: jax.block_until_ready(compiled(x, t)), seconds, info

  return jax_cases._runner(f"jax {method}", _info(method, "jax", shape, opts), build, 1)


def peer_runner(method: str, shape: Sequence[int], opts: Options, model_kw: dict) -> Runner:
  """`PEERS[method]` on the torch copy of the same model and volume."""

  def setup():
    import torch

    from benchmarks.torch_reference import from_flax

    model = jax_cases._model(shape, model_kw, "auto", "argmax", "float32")
    ref = from_flax(model).eval()
    x = jax_cases.NORMALIZE(jax_cases._data(shape, 1)[0])
    base = baseline(opts.baseline, x, jax_cases.NORMALIZE, opts.blur_sigma, opts.seed)[0]
    ncdhw = lambda a: torch.from_numpy(np.moveaxis(np.asarray(a), -1, 1).copy())
    args = (ref, ncdhw(x), 0, ncdhw(base), opts)
    holder["call"] = lambda: PEERS[method](*args)
    return None  # eager: the first call is the warm-up, nothing to compile

  holder = {}
  info = _info(method, "captum", shape, opts)
  return Runner(f"captum {method}", setup, lambda: holder["call"](), 1, info)


def runners(shape, methods=None, opts: Options | None = None, *, model_kw=REAL_MODEL, peers=True):
  """A JAX runner per method (default: all of METHODS), and its Captum peer if `peers`."""
  opts = opts or Options()
  out = []
  for method in check_methods(methods or tuple(METHODS), "--methods"):
    out.append(jax_runner(method, shape, opts, model_kw))
    if peers and method in PEERS:
      out.append(peer_runner(method, shape, opts, model_kw))
  return out


def markdown(results: list[dict]) -> str:
  """One row per runner: maps/s median (min-max), seconds per map, compile, ratio to Captum."""
  rows = [
    "| method | runner | shape | maps/s median (min-max) | s/map | compile s | vs captum |",
    "|---|---|---|---|---|---|---|",
  ]
  captum = {r["method"]: r["rate_median"] for r in results if r["framework"] == "captum"}
  for r in results:
    peer = captum.get(r["method"]) if r["framework"] == "jax" else None
    ratio = f"{r['rate_median'] / peer:.2f}x" if peer else "-"
    rows.append(
      f"| {r['method']} | {r['framework']} | {'x'.join(map(str, r['shape']))} "
      f"| {r['rate_median']:.3g} ({r['rate_min']:.3g}-{r['rate_max']:.3g}) "
      f"| {1 / r['rate_median']:.3g} | {r['compile_s']:.1f} "
      f"| {ratio} |"
    )
  return "\n".join(rows) + "\n"


def define_flags() -> None:
  """The command's flags (defined when it runs, not at import: benchmarks.run has its own)."""
  flags.DEFINE_list("shape", ["128", "64", "64"], "volume D,H,W")
  flags.DEFINE_list("methods", None, "methods to time (default: all of METHODS)")
  flags.DEFINE_integer("repeats", 3, "timed rounds", lower_bound=1)
  flags.DEFINE_string("out", "benchmarks/out/methods", "folder for methods.json/.md")
  flags.DEFINE_bool("torch", True, "also time the Captum peers (if installed)")
  cli.define_dataclass(Options)


def main(f) -> None:
  try:
    shape = tuple(int(s) for s in f.shape)
  except ValueError:
    cli.fail(f"--shape: expected integers D,H,W, got {','.join(f.shape)}")
  opts = validate(cli.from_flags(Options, f))
  peers = f.torch and torch_module() is not None
  results = run_interleaved(runners(shape, f.methods, opts, peers=peers), f.repeats)
  out = pathlib.Path(f.out)
  out.mkdir(parents=True, exist_ok=True)
  threads = len(os.sched_getaffinity(0))
  doc = {"environment": environment(threads, torch_module() if peers else None)}
  doc["results"] = results
  (out / "methods.json").write_text(json.dumps(doc, indent=1, default=_jsonable))
  (out / "methods.md").write_text(table := markdown(results))
  print(table + f"wrote {out}/methods.json, methods.md")


if __name__ == "__main__":
  cli.run(main, define_flags, doc=__doc__)
