"""Reading jaxprs: the call primitives an interpreter may inline, sub-jaxprs, binding an equation.

Shared by the jaxpr rewrites (`guided` swaps ReLUs, `lrp` swaps the backward pass of linear
segments). Nothing here imports anything of ours but jax and numpy.
"""

from collections.abc import Sequence
from typing import Any

from jax.extend import core as jcore

# Primitives whose sub-jaxpr is simply "call this function on these arguments": their
# inputs and outputs map one-to-one onto the sub-jaxpr's, so the interpreter can inline them.
CALLS = frozenset(
  {
    "pjit",
    "jit",
    "closed_call",
    "core_call",
    "remat",
    "remat2",
    "checkpoint",
    "custom_jvp_call",
    "custom_vjp_call",
    "custom_vjp_call_jaxpr",
  }
)


def sub_jaxprs(params: dict[str, Any]) -> list[tuple[jcore.Jaxpr, Sequence[Any]]]:
  """Every (jaxpr, consts) held in an equation's params (one level deep)."""
  found = []
  for value in params.values():
    for item in value if isinstance(value, tuple | list) else (value,):
      if isinstance(item, jcore.ClosedJaxpr):
        found.append((item.jaxpr, item.consts))
      elif isinstance(item, jcore.Jaxpr):
        found.append((item, ()))
  return found


def bind(eqn: jcore.JaxprEqn, invals: list[Any]) -> Any:
  """Applies the equation's primitive as `jax.core.eval_jaxpr` does (across jax versions)."""
  params = eqn.primitive.get_bind_params(eqn.params)
  subfuns, params = params if isinstance(params, tuple) else ((), params)
  with eqn.ctx.manager:
    return eqn.primitive.bind(*subfuns, *invals, **params)
