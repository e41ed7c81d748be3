"""One place that compiles: `jit(fn, ...)` is `jax.jit` with this backend's compiler options.

On CPU, convolutions run several times faster when XLA hands them to Eigen instead of its newer
YNNPACK library (measured on the project's 2-core AMD EPYC: `benchmarks/RESULTS.md`), and the
3D convolutions of `models/planes.py` rely on fast 2D ones. The option is per compilation, not
an environment variable. JAX accepts compiler options only on a top-level jit, so the wrapper
falls back to a plain jit when it is called inside another trace (a train step inside a scanned
epoch, a method inside a gradient): the outermost `compile.jit` then sets the options for all.
"""

import functools
from collections.abc import Callable
from typing import Any

import jax

try:  # where JAX keeps it; without it the tracer check below still catches most nesting
  from jax._src.core import trace_state_clean as _trace_state_clean
except ImportError:  # pragma: no cover - other jax versions
  _trace_state_clean = None

# On CPU, YNNPACK keeps matmuls (where it is fast) and convolutions go to Eigen.
_CPU_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"}


@functools.cache
def compiler_options() -> dict[str, str]:
  """XLA options for top-level jits on this backend: the Eigen convolutions on CPU, else none.

  A jaxlib that does not know the option gets none (it raises a bare runtime error for an
  unknown option, so it is probed once).
  """
  if jax.default_backend() != "cpu":
    return {}
  try:
    jax.jit(lambda x: x + 1, compiler_options=_CPU_OPTIONS).lower(1.0).compile()
  except Exception:  # noqa: BLE001 - any failure means the option is not available
    return {}
  return dict(_CPU_OPTIONS)


def _nested(args: Any, kwargs: Any) -> bool:
  if _trace_state_clean is not None and not _trace_state_clean():
    return True
  return any(isinstance(a, jax.core.Tracer) for a in jax.tree.leaves((args, kwargs)))


class Jitted:
  """A jitted function that compiles with `compiler_options()` at the top level.

  Called inside another trace it runs as a plain jit (its caller's options apply). `lower`
  is that of the top-level jit, for ahead-of-time compilation and cost analysis.
  """

  def __init__(self, fn: Callable, **jit_kwargs: Any):
    self.fn = fn
    self._top = jax.jit(fn, compiler_options=compiler_options() or None, **jit_kwargs)
    self._plain = jax.jit(fn, **jit_kwargs)
    functools.update_wrapper(self, fn)

  def __call__(self, *args: Any, **kwargs: Any) -> Any:
    if _nested(args, kwargs):
      return self._plain(*args, **kwargs)
    return self._top(*args, **kwargs)

  def lower(self, *args: Any, **kwargs: Any):
    return self._top.lower(*args, **kwargs)

  def _cache_size(self) -> int:
    """Traces of the top-level jit (as `jax.jit`'s, for tests that count recompiles)."""
    return self._top._cache_size()


def jit(fn: Callable | None = None, **jit_kwargs: Any) -> Any:
  """`jax.jit` with this backend's compiler options; usable as `@jit` or `@jit(static_...)`."""
  if fn is None:
    return functools.partial(jit, **jit_kwargs)
  return Jitted(fn, **jit_kwargs)
