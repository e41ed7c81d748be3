"""Guided backpropagation without editing the model: a jaxpr rewrite of its ReLUs.

`f` is traced with `jax.make_jaxpr`, and the jaxpr is evaluated again by a small interpreter
that swaps every ReLU for `guided_relu`, whose backward pass lets through only positive
gradients where the ReLU's input was positive (Springenberg et al. 2015). A ReLU is
- the `max` primitive with a zero operand (a literal 0, a broadcast of one, or a zero constant),
  which is what `jnp.maximum(x, 0)` and the inside of `jax.nn.relu` trace to;
- `jax.nn.relu`'s `custom_jvp_call` (recognised by name, so a change of its body keeps working).
The interpreter enters `jit`/`pjit`, `closed_call`, `remat` and custom-derivative calls; a
ReLU inside any other primitive with a sub-jaxpr (`while`, `scan`, `cond`) raises ValueError,
as does a model with no ReLU at all. Escape hatch: a model written as `f(x, relu=...)` can get
`guided_relu` passed in directly with `guided_backprop(f, x, relu_arg='relu')`.
"""

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jcore

from bugnist_jax.saliency._common import (
  Array,
  Model,
  check_input,
  resolve_targets,
  target_gradient,
  with_targets,
)
from bugnist_jax.saliency._jaxpr import CALLS as _CALLS
from bugnist_jax.saliency._jaxpr import bind as _bind
from bugnist_jax.saliency._jaxpr import sub_jaxprs as _sub_jaxprs

# Shape-only primitives that keep an all-zero operand all-zero (to see `max(x, broadcast(0))`).
_ZERO_PRESERVING = frozenset({"broadcast_in_dim", "convert_element_type", "reshape", "copy"})


@jax.custom_vjp
def guided_relu(x: Array) -> Array:
  """ReLU whose backward pass keeps only positive gradients at positive inputs."""
  return jnp.maximum(x, jnp.zeros_like(x))


def _guided_relu_fwd(x: Array) -> tuple[Array, Array]:
  return guided_relu(x), x


def _guided_relu_bwd(x: Array, g: Array) -> tuple[Array]:
  return (jnp.where((x > 0) & (g > 0), g, jnp.zeros_like(g)),)


guided_relu.defvjp(_guided_relu_fwd, _guided_relu_bwd)


def _is_relu_call(eqn: jcore.JaxprEqn) -> bool:
  """True for `jax.nn.relu`'s custom_jvp call (one array in, one out)."""
  if eqn.primitive.name != "custom_jvp_call" or len(eqn.invars) != 1:
    return False
  info = eqn.params["call_jaxpr"].jaxpr.debug_info
  return info is not None and (info.func_src_info or "").split(" ")[0] == "relu"


class _Zeros:
  """Which variables of one jaxpr are known to hold only zeros."""

  def __init__(self, jaxpr: jcore.Jaxpr, consts: Sequence[Any]):
    self.consts = dict(zip(jaxpr.constvars, consts, strict=True))
    self.known = set()

  def __call__(self, var: Any) -> bool:
    if isinstance(var, jcore.Literal):
      return not np.any(np.asarray(var.val))
    if var in self.consts:  # looked at only when it is an operand of max
      try:  # np.asarray first: array methods would trace under an enclosing jit
        value = np.asarray(self.consts[var])
      except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
        return False  # a traced constant: not known to be zero
      return bool(value.size) and not value.any()
    return var in self.known

  def update(self, eqn: jcore.JaxprEqn) -> None:
    if eqn.primitive.name in _ZERO_PRESERVING and self(eqn.invars[0]):
      self.known.add(eqn.outvars[0])


def _relu_operand(eqn: jcore.JaxprEqn, is_zero: _Zeros) -> int | None:
  """Index of the ReLU's input if `eqn` is a ReLU (max with zero, or jax.nn.relu), else None."""
  if _is_relu_call(eqn):
    return 0
  if eqn.primitive.name == "max" and len(eqn.invars) == 2:
    zero = [is_zero(v) for v in eqn.invars]
    if zero[0] != zero[1]:
      return zero.index(False)
  return None


def _count_relus(jaxpr: jcore.Jaxpr, consts: Sequence[Any]) -> int:
  """Number of ReLUs the interpreter would swap; raises where one sits out of its reach."""
  is_zero, count = _Zeros(jaxpr, consts), 0
  for eqn in jaxpr.eqns:
    if _relu_operand(eqn, is_zero) is not None:
      count += 1
    else:
      inner = sum(_count_relus(j, c) for j, c in _sub_jaxprs(eqn.params))
      if inner and eqn.primitive.name not in _CALLS:
        raise ValueError(
          f"f: guided_backprop found a ReLU inside a '{eqn.primitive.name}' primitive, which "
          "its jaxpr rewrite cannot enter; write the model with a relu argument and pass "
          "relu_arg=<its name>"
        )
      count += inner
    is_zero.update(eqn)
  return count


def _eval_guided(jaxpr: jcore.Jaxpr, consts: Sequence[Any], args: Sequence[Any]) -> list[Any]:
  """Evaluates `jaxpr` on `args` with every ReLU replaced by `guided_relu`."""
  env: dict[Any, Any] = dict(zip(jaxpr.constvars, consts, strict=True))
  env.update(zip(jaxpr.invars, args, strict=True))
  read = lambda v: v.val if isinstance(v, jcore.Literal) else env[v]
  is_zero = _Zeros(jaxpr, consts)
  for eqn in jaxpr.eqns:
    invals = [read(v) for v in eqn.invars]
    relu_in = _relu_operand(eqn, is_zero)
    subs = _sub_jaxprs(eqn.params)
    if relu_in is not None:
      out = guided_relu(invals[relu_in])
      outs = [jnp.broadcast_to(out, eqn.outvars[0].aval.shape)]
    elif eqn.primitive.name in _CALLS and len(subs) == 1 and _count_relus(*subs[0]):
      # custom_jvp/vjp rules are dropped here: the guided rule replaces the derivative.
      outs = _eval_guided(subs[0][0], subs[0][1], invals)
    else:
      outs = _bind(eqn, invals)
      outs = outs if eqn.primitive.multiple_results else [outs]
    env.update(zip(eqn.outvars, outs, strict=True))
    is_zero.update(eqn)
  return [read(v) for v in jaxpr.outvars]


def rewrite_relus(f: Model, x: Array) -> Model:
  """Returns `f` with every ReLU made a `guided_relu`, traced at `x`'s shape and dtype.

  Raises ValueError if `f` has no ReLU or has one the rewrite cannot reach.
  """
  closed = jax.make_jaxpr(f)(jax.ShapeDtypeStruct(x.shape, x.dtype))
  if not _count_relus(closed.jaxpr, closed.consts):
    raise ValueError(
      "f: guided_backprop found no ReLU (max(x, 0) or jax.nn.relu) in the model's jaxpr"
    )
  if len(closed.jaxpr.outvars) != 1:
    raise ValueError("f: expected a model returning one logits array [B, K]")
  return lambda x: _eval_guided(closed.jaxpr, closed.consts, [x])[0]


@with_targets(1)
@partial(jax.jit, static_argnums=0, static_argnames=("relu_arg",))
def guided_backprop(
  f: Callable[..., Array], x: Array, targets: Array | None = None, *, relu_arg: str | None = None
) -> Array:
  """Guided backpropagation: `[B, *spatial, C]` -> attributions of `x`'s shape.

  Args:
    f: the model, `f(x) -> logits [B, K]`; with `relu_arg`, `f(x, **{relu_arg: relu})`.
    x: inputs `[B, *spatial, C]`.
    targets: int `[B]`, or None for each sample's predicted class.
    relu_arg: name of a keyword argument of `f` taking the ReLU function; given, `guided_relu`
      is passed in and no jaxpr rewrite happens.
  """
  check_input(x)
  guided = partial(f, **{relu_arg: guided_relu}) if relu_arg else rewrite_relus(f, x)
  targets = resolve_targets(guided(x), targets)
  return target_gradient(guided, x, targets)
