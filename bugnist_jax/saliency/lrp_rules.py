"""The LRP rules of `lrp`, as zennit defines them, on one linear segment `z = L(x) + c`.

A segment is the affine map between two nonlinearities: a convolution or dense layer with its
bias and any per-channel affine ops after it (an eval-mode batch norm, so batch norm is merged
into the preceding layer, as zennit's MergeBatchNorm canonizer does). `L` is split by the sign
of its coefficients, `L = P + N` (`pn(x) -> (P x, N x)`: the weights W+ and W- of zennit's
ClampMod, with a merged batch norm's scale folded in first); `c` is the merged bias, split as
`c+ = max(c, 0)`, `c- = min(c, 0)`. Every rule maps the relevance `R` of `z` (`[B, ...]` like
`z`) to the relevance of each input:
- epsilon: `x * L^T(R / stab(z, epsilon))` (LRP-0 for epsilon -> 0);
- zplus: `z+ = P x+ + N x- + c+`, `x+ * P^T s + x- * N^T s`, `s = R / stab(z+)` (zennit's ZPlus,
  alpha=1 beta=0 with negative inputs allowed);
- alpha_beta: alpha times the positive share minus beta times the negative share (zennit's
  AlphaBeta; alpha - beta must be 1);
- gamma: zennit's generalised Gamma (positive weights boosted by gamma for positive outputs,
  negative ones for negative outputs);
- zbox (first layer): `x * L^T s - low * P^T s - high * N^T s`, `s = R / stab(L x - P low - N
  high)`, for inputs bounded by [low, high];
- norm: epsilon with the stabiliser, for segments without weights (sums, average pools, a bias
  added after a max pool), zennit's Norm rule.
`stab(v, e) = v + e * sign(v)` with sign(0) = +1, as zennit's Stabilizer.
"""

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp

Array = jax.Array
PN = Callable[[tuple[Array, ...]], tuple[Array, Array]]
RULES = ("epsilon", "gamma", "zplus", "alpha_beta")
COMPOSITES = ("epsilon_plus", "epsilon_gamma_box", "epsilon_alpha2_beta1")
FIRST_RULES = ("zbox", *RULES)


@dataclasses.dataclass(frozen=True)
class RuleParams:
  """The rules' parameters (zennit's defaults)."""

  epsilon: float = 1e-6
  gamma: float = 0.25
  alpha: float = 2.0
  beta: float = 1.0
  stabilizer: float = 1e-6


def check_rule(rule: str, first_rule: str | None, params: RuleParams) -> None:
  """Raises ValueError naming the argument unless the rule names and parameters are valid."""
  if rule not in RULES + COMPOSITES:
    raise ValueError(f"rule: expected one of {RULES + COMPOSITES}, got {rule!r}")
  if first_rule is not None and first_rule not in FIRST_RULES:
    raise ValueError(f"first_rule: expected None or one of {FIRST_RULES}, got {first_rule!r}")
  if params.alpha < 0 or params.beta < 0 or abs(params.alpha - params.beta - 1) > 1e-12:
    raise ValueError(
      "alpha, beta: expected alpha - beta = 1, both >= 0 (zennit's AlphaBeta), got "
      f"{params.alpha}, {params.beta}"
    )
  for name in ("epsilon", "stabilizer", "gamma"):
    if getattr(params, name) < 0:
      raise ValueError(f"{name}: expected >= 0, got {getattr(params, name)}")


def segment_rule(rule: str, first_rule: str | None, kind: str, first: bool) -> tuple[str, dict]:
  """(rule name, parameter overrides) of one segment: `kind` 'conv', 'dense' or 'none'
  (no weights), `first` for the segment that reads the model's input."""
  if kind == "none":
    return "norm", {}
  if first and first_rule is not None:
    return first_rule, {}
  if rule in RULES:
    return rule, {}
  if rule == "epsilon_plus":
    return ("zplus", {}) if kind == "conv" else ("epsilon", {})
  if rule == "epsilon_alpha2_beta1":
    return ("alpha_beta", {"alpha": 2.0, "beta": 1.0}) if kind == "conv" else ("epsilon", {})
  # epsilon_gamma_box: zbox on the first convolution, gamma on the others, epsilon on dense.
  if kind == "dense":
    return "epsilon", {}
  return ("zbox", {}) if first else ("gamma", {})


def _stab(v: Array, e: float) -> Array:
  return v + e * jnp.where(v >= 0, 1, -1).astype(v.dtype)


def relevance(
  name: str,
  p: RuleParams,
  pn: PN,
  xs: tuple[Array, ...],
  c: Array,
  z: Array,
  r: Array,
  bounds: tuple[Array, Array] | None,
) -> tuple[Array, ...]:
  """Relevance of each segment input `xs` (tuple of arrays) for the relevance `r` of its output
  `z = P xs + N xs + c`; `bounds` = (low, high) broadcast to the input, for zbox."""
  _, back = jax.vjp(pn, xs)
  zeros = jnp.zeros_like(z)
  pt = lambda s: back((s, zeros))[0]  # P^T s, one array per input
  nt = lambda s: back((zeros, s))[0]
  pos = tuple(jnp.maximum(x, 0) for x in xs)
  neg = tuple(jnp.minimum(x, 0) for x in xs)
  cp, cn = jnp.maximum(c, 0), jnp.minimum(c, 0)
  add = lambda *terms: tuple(sum(t) for t in zip(*terms, strict=True))
  times = lambda a, b: tuple(u * v for u, v in zip(a, b, strict=True))
  scale = lambda k, a: tuple(k * u for u in a)
  if name in ("epsilon", "norm"):
    s = r / _stab(z, p.epsilon if name == "epsilon" else p.stabilizer)
    return times(xs, add(pt(s), nt(s)))
  if name in ("zplus", "alpha_beta"):
    alpha, beta = (1.0, 0.0) if name == "zplus" else (p.alpha, p.beta)
    sp = r / _stab(pn(pos)[0] + pn(neg)[1] + cp, p.stabilizer)
    out = scale(alpha, add(times(pos, pt(sp)), times(neg, nt(sp))))
    if beta == 0:
      return out
    sn = r / _stab(pn(pos)[1] + pn(neg)[0] + cn, p.stabilizer)
    return add(out, scale(-beta, add(times(pos, nt(sn)), times(neg, pt(sn)))))
  if name == "gamma":
    g = p.gamma
    boost_p = lambda q: (1 + g) * q[0] + q[1]  # (W + g W+) applied, from (P x, N x)
    boost_n = lambda q: q[0] + (1 + g) * q[1]  # (W + g W-)
    up = boost_p(pn(pos)) + boost_n(pn(neg)) + c + g * cp
    down = boost_n(pn(pos)) + boost_p(pn(neg)) + c + g * cn
    gp = jnp.where(z > 0, r, 0) / _stab(up, p.stabilizer)
    gn = jnp.where(z < 0, r, 0) / _stab(down, p.stabilizer)
    back_p = lambda s: add(scale(1 + g, pt(s)), nt(s))  # (W + g W+)^T s
    back_n = lambda s: add(pt(s), scale(1 + g, nt(s)))
    return add(
      times(pos, back_p(gp)), times(neg, back_n(gp)), times(pos, back_n(gn)), times(neg, back_p(gn))
    )
  if name == "zbox":
    low, high = bounds
    (lo_p, _), (_, hi_n) = pn((low,)), pn((high,))
    s = r / _stab(z - c - lo_p - hi_n, p.stabilizer)
    (x,), (ps,), (ns,) = xs, pt(s), nt(s)
    return (x * (ps + ns) - low * ps - high * ns,)
  raise ValueError(f"rule: unknown {name!r}")
