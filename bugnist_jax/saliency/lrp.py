"""Layer-wise relevance propagation (Bach et al. 2015) without editing the model: a jaxpr rewrite.

`f` is traced with `jax.make_jaxpr` and evaluated again by an interpreter that follows which
values depend on the input. Such a value is kept as an affine function of the last values
before it that came out of a nonlinearity (its *segment*: a convolution or dense layer with its
bias and any eval-mode batch norm after it, which is therefore merged into it). When a
nonlinearity reads it, the segment is closed into one `jax.custom_vjp` whose backward pass is
the LRP rule (`lrp_rules`) instead of the gradient. Through the nonlinearities the relevance
then passes as zennit's composites pass it: unchanged through an element-wise activation
(ReLU: zennit's Pass rule), and by the gradient through a max pool (winner takes all; ties as
JAX's gradient). One `jax.vjp` of the rewritten model, started from the target logit, gives
the map: the relevance at the input.

Rules (`rule=`) apply to every weighted segment, composites mix them as zennit's:
- 'epsilon', 'gamma', 'zplus', 'alpha_beta' (alpha - beta = 1);
- 'epsilon_plus': zplus on convolutions, epsilon on dense layers;
- 'epsilon_alpha2_beta1': alpha=2, beta=1 on convolutions, epsilon on dense layers;
- 'epsilon_gamma_box': zbox on the first convolution (inputs bounded by `low`, `high`), gamma
  on the other convolutions, epsilon on dense layers.
`first_rule` overrides the rule of the layer that reads the input (e.g. 'zbox'). Segments
without weights (an average pool, a sum, a bias added after a max pool as BugCNN3D's fused
pool does) use the epsilon rule with the stabiliser (zennit's Norm).

The interpreter enters `jit`, `closed_call`, `remat` and custom-derivative calls (their custom
rules are dropped: the relevance rules replace them); a `while`, `scan` or `cond` that reads
the input raises ValueError. A nonlinearity of two input-dependent values (a product, an
attention) passes the relevance by its gradient, which does not conserve it.
"""

import itertools
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from jax.extend import core as jcore

from bugnist_jax.saliency import lrp_rules
from bugnist_jax.saliency._common import Array, Model, check_input, resolve_targets, with_targets
from bugnist_jax.saliency._jaxpr import CALLS, bind, sub_jaxprs
from bugnist_jax.saliency.lrp_rules import RuleParams

# Linear in their float operands (a non-live float operand, such as a pad value, is an offset).
_STRUCTURAL = frozenset(
  {
    "add", "add_any", "broadcast_in_dim", "concatenate", "convert_element_type", "copy",
    "copy_p", "cumsum", "dynamic_slice", "dynamic_update_slice", "expand_dims", "gather", "pad",
    "reduce_precision", "reduce_sum", "reduce_window_sum", "reshape", "rev", "select_n",
    "slice", "squeeze", "transpose",
  }
)  # fmt: skip
# Moving, copying or dropping values only: their gradient conserves relevance, so a segment of
# these alone (a reshape before a max pool, a flatten) passes it by the gradient, as zennit,
# which has no rule for them.
_MOVING = frozenset(
  {
    "broadcast_in_dim", "concatenate", "convert_element_type", "copy", "copy_p",
    "dynamic_slice", "expand_dims", "gather", "reduce_precision", "reshape", "rev", "slice",
    "squeeze", "transpose",
  }
)  # fmt: skip
_WEIGHTED = {"conv_general_dilated": "conv", "dot_general": "dense"}
_KINDS = ("none", "dense", "conv")
# Same shape in and out but not element-wise: relevance passes by the gradient.
_NOT_ELEMENTWISE = frozenset({"sort", "cummax", "cummin", "cumprod", "cumlogsumexp"})


class _Live:
  """A value that depends on the input: affine in its segment's inputs `{id: array}`.

  `pn(inputs) -> (P, N)`, the linear part split by the sign of its coefficients; `zero` is the
  value at zero inputs (the merged bias); `kind` the strongest weighted op seen.
  """

  def __init__(self, value, zero, pn, inputs, kind, moving=False):
    self.value, self.zero, self.pn, self.inputs = value, zero, pn, inputs
    self.kind, self.moving = kind, moving

  @classmethod
  def start(cls, key: int, value: Array) -> "_Live":
    """A segment input: the model's input or a nonlinearity's output."""
    pn = lambda inputs: (inputs[key], jnp.zeros_like(value))
    return cls(value, jnp.zeros_like(value), pn, {key: value}, "none", moving=True)


def _is_float(v: Any) -> bool:
  return jnp.issubdtype(jnp.result_type(v), jnp.inexact)


class _Rewrite:
  """One evaluation of the rewritten model (ids of segment inputs, closed segments)."""

  def __init__(self, rule: str, first_rule: str | None, params: RuleParams, bounds):
    self.rule, self.first_rule, self.params, self.bounds = rule, first_rule, params, bounds
    self.ids = itertools.count(1)  # 0 is the model's input
    self.closed: dict[int, Array] = {}

  def close(self, live: _Live) -> Array:
    """The segment's output as a custom_vjp whose backward pass is its LRP rule."""
    if live.moving:  # the gradient passes the relevance (see _MOVING)
      return live.value
    if id(live) in self.closed:
      return self.closed[id(live)]
    keys = tuple(live.inputs)
    name, extra = lrp_rules.segment_rule(self.rule, self.first_rule, live.kind, 0 in keys)
    params = RuleParams(**{**vars(self.params), **extra})
    pn = lambda xs: live.pn(dict(zip(keys, xs, strict=True)))
    z_of = lambda xs: sum(pn(xs)) + live.zero

    @jax.custom_vjp
    def segment(*xs):
      return z_of(xs)

    def forward(*xs):
      z = z_of(xs)
      return z, (xs, z)

    def backward(res, r):
      xs, z = res
      return lrp_rules.relevance(name, params, pn, xs, live.zero, z, r, self.bounds)

    segment.defvjp(forward, backward)
    out = segment(*(live.inputs[k] for k in keys))
    self.closed[id(live)] = out
    return out

  def linear(self, eqn: jcore.JaxprEqn, vals: list[Any]) -> _Live | None:
    """The output of a linear equation on live operands, or None if it is not linear."""
    name = eqn.primitive.name
    live = [isinstance(v, _Live) for v in vals]
    lives = [v for v in vals if isinstance(v, _Live)]
    other = [v for v in vals if not isinstance(v, _Live)]
    kind = max((v.kind for v in lives), key=_KINDS.index)
    if name in _WEIGHTED and len(lives) == 1 and _is_float(other[0]):
      w, (a,) = other[0], lives
      wp, wn = jnp.maximum(w, 0), jnp.minimum(w, 0)
      at = lambda u, wt: bind(eqn, [u, wt] if live[0] else [wt, u])

      def pn(xs):
        p, n = a.pn(xs)
        return at(p, wp) + at(n, wn), at(p, wn) + at(n, wp)

      kind = max(kind, _WEIGHTED[name], key=_KINDS.index)
    elif name in ("mul", "div") and len(lives) == 1 and (name == "mul" or live[0]):
      (a,), s = lives, other[0]
      s = 1 / s if name == "div" else s
      sp, sn = jnp.maximum(s, 0), jnp.minimum(s, 0)

      def pn(xs):
        p, n = a.pn(xs)
        return sp * p + sn * n, sp * n + sn * p

    elif name == "neg":
      pn = lambda xs: tuple(-q for q in reversed(lives[0].pn(xs)))
    elif name == "sub":
      part = lambda v, xs: v.pn(xs) if isinstance(v, _Live) else (0.0, 0.0)
      pn = lambda xs: (
        part(vals[0], xs)[0] - part(vals[1], xs)[1],
        part(vals[0], xs)[1] - part(vals[1], xs)[0],
      )
    elif name in _STRUCTURAL:

      def pn(xs):
        parts = [v.pn(xs) if isinstance(v, _Live) else None for v in vals]
        operands = lambda k: [
          p[k] if p is not None else (jnp.zeros_like(v) if _is_float(v) else v)
          for p, v in zip(parts, vals, strict=True)
        ]
        return bind(eqn, operands(0)), bind(eqn, operands(1))

    else:
      return None
    value = bind(eqn, [v.value if isinstance(v, _Live) else v for v in vals])
    zero = bind(eqn, [v.zero if isinstance(v, _Live) else v for v in vals])
    if not _is_float(value):
      return value
    inputs = {k: x for v in lives for k, x in v.inputs.items()}
    moving = name in _MOVING and len(lives) == len(vals) and all(v.moving for v in lives)
    return _Live(value, zero, pn, inputs, kind, moving)

  def nonlinear(self, eqn: jcore.JaxprEqn, vals: list[Any]) -> list[Any]:
    """Closes the live operands, applies the equation; outputs start new segments."""
    lives = [v for v in vals if isinstance(v, _Live)]
    closed = [self.close(v) if isinstance(v, _Live) else v for v in vals]
    outs = bind(eqn, closed)
    outs = outs if eqn.primitive.multiple_results else [outs]
    (z,) = [c for c, v in zip(closed, vals, strict=True) if isinstance(v, _Live)][:1] or [None]
    passes = (
      len(lives) == 1 and len(outs) == 1 and eqn.primitive.name not in _NOT_ELEMENTWISE
      and outs[0].shape == z.shape
    )  # fmt: skip
    result = []
    for out in outs:
      if not _is_float(out):
        result.append(out)
        continue
      # An element-wise activation passes the relevance unchanged (its derivative replaced
      # by the identity); any other nonlinearity (a max pool) passes it by its gradient.
      out = z + jax.lax.stop_gradient(out - z) if passes else out
      result.append(_Live.start(next(self.ids), out))
    return result

  def eval(self, jaxpr: jcore.Jaxpr, consts: Sequence[Any], args: Sequence[Any]) -> list[Any]:
    env: dict[Any, Any] = dict(zip(jaxpr.constvars, consts, strict=True))
    env.update(zip(jaxpr.invars, args, strict=True))
    read = lambda v: v.val if isinstance(v, jcore.Literal) else env[v]
    for eqn in jaxpr.eqns:
      vals = [read(v) for v in eqn.invars]
      subs = sub_jaxprs(eqn.params)
      if not any(isinstance(v, _Live) for v in vals):
        outs = bind(eqn, vals)
        outs = outs if eqn.primitive.multiple_results else [outs]
      elif eqn.primitive.name in CALLS and len(subs) == 1:
        outs = self.eval(subs[0][0], subs[0][1], vals)
      elif subs:
        raise ValueError(
          f"f: lrp cannot enter a '{eqn.primitive.name}' primitive that reads the input"
        )
      else:
        out = self.linear(eqn, vals)
        outs = [out] if out is not None else self.nonlinear(eqn, vals)
      env.update(zip(eqn.outvars, outs, strict=True))
    return [read(v) for v in jaxpr.outvars]


def rewrite(
  f: Model,
  x: Array,
  rule: str = "epsilon",
  first_rule: str | None = None,
  params: RuleParams | None = None,
  bounds: tuple[Array, Array] | None = None,
) -> Callable[[Array], Array]:
  """`f` with the backward pass of its linear segments made LRP rules, traced at `x`'s shape:
  `jax.vjp` of it, started from an output relevance, returns the input relevance."""
  params = RuleParams() if params is None else params
  lrp_rules.check_rule(rule, first_rule, params)
  closed = jax.make_jaxpr(f)(jax.ShapeDtypeStruct(x.shape, x.dtype))
  if len(closed.jaxpr.outvars) != 1:
    raise ValueError("f: expected a model returning one logits array [B, K]")

  def rewritten(x):
    run = _Rewrite(rule, first_rule, params, bounds)
    (out,) = run.eval(closed.jaxpr, closed.consts, [_Live.start(0, x)])
    return run.close(out) if isinstance(out, _Live) else out

  return rewritten


@with_targets(1)
@partial(
  jax.jit,
  static_argnums=0,
  static_argnames=("rule", "first_rule", "epsilon", "gamma", "alpha", "beta", "stabilizer"),
)
def lrp(
  f: Model,
  x: Array,
  targets: Array | None = None,
  *,
  rule: str = "epsilon",
  first_rule: str | None = None,
  epsilon: float = 1e-6,
  gamma: float = 0.25,
  alpha: float = 2.0,
  beta: float = 1.0,
  stabilizer: float = 1e-6,
  low: Array | float | None = None,
  high: Array | float | None = None,
) -> Array:
  """Layer-wise relevance propagation: `[B, *spatial, C]` -> relevance of `x`'s shape.

  The output relevance is the target logit (one-hot times the logits), so with the epsilon
  rule on a network without biases the map sums to the target logit as epsilon -> 0 (and for
  ReLU networks epsilon-LRP with epsilon -> 0 is input x gradient).

  Args:
    f: the model, `f(x) -> logits [B, K]` (eval mode).
    x: inputs `[B, *spatial, C]`.
    targets: int `[B]`, `[B, T]`, a score function, or None (predicted classes).
    rule: a rule or composite (module docstring).
    first_rule: rule of the layer that reads the input (None: the rule's own choice).
    epsilon: the epsilon rule's epsilon; stabilizer: the other rules' (zennit's defaults).
    gamma: the gamma rule's gamma; alpha, beta: the alpha-beta rule's (alpha - beta = 1).
    low, high: zbox's input bounds, broadcastable to `x` (e.g. the model inputs of raw
      intensities 0 and 255); None: each sample's own min and max.
  """
  check_input(x)
  params = RuleParams(epsilon, gamma, alpha, beta, stabilizer)
  axes = tuple(range(1, x.ndim))
  low = jnp.min(x, axes, keepdims=True) if low is None else jnp.asarray(low, x.dtype)
  high = jnp.max(x, axes, keepdims=True) if high is None else jnp.asarray(high, x.dtype)
  bounds = (jnp.broadcast_to(low, x.shape), jnp.broadcast_to(high, x.shape))
  logits, back = jax.vjp(rewrite(f, x, rule, first_rule, params, bounds), x)
  targets = resolve_targets(logits, targets)
  return back(jax.nn.one_hot(targets, logits.shape[-1], dtype=logits.dtype) * logits)[0]
