"""compile.jit: the backend's compiler options at the top level, a plain jit when nested."""

import jax
import jax.numpy as jnp

from bugnist_jax import compile


def test_compiler_options_compile_on_this_backend():
  options = compile.compiler_options()
  if jax.default_backend() == "cpu":
    assert options  # Eigen convolutions are what the CPU path is tuned for
  f = jax.jit(lambda x: x @ x, compiler_options=options)
  assert float(f(jnp.eye(3))[1, 1]) == 1.0


def test_nested_calls_and_transforms_work():
  inner = compile.jit(lambda x: x * 2)
  outer = compile.jit(lambda x: inner(x) + 1)
  assert float(outer(1.0)) == 3.0  # a compile.jit inside a compile.jit
  assert float(jax.grad(lambda x: inner(x) ** 2)(1.5)) == 12.0  # inside a gradient
  assert float(jax.jit(lambda: inner(3.0))()) == 6.0  # inside a plain jit, constant argument
  assert float(jax.lax.scan(lambda c, x: (inner(c), None), 1.0, None, length=3)[0]) == 8.0
  compiled = inner.lower(2.0).compile()  # ahead-of-time, as the benchmarks do
  assert float(compiled(2.0)) == 4.0
