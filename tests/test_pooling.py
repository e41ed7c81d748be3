"""The pooling variants compute one function; 'argmax' routes gradients as PyTorch does."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bugnist_jax.models import pooling

SHAPES = [(2, 9, 7, 3), (2, 9, 7, 6, 4)]  # odd sizes: windows floor like 'VALID'


def _reference(x, bias):
  return pooling.max_pool(jax.nn.relu(x + bias), 2, "window")


@pytest.mark.parametrize("shape", SHAPES)
def test_relu_max_pool_with_bias_matches_autodiff_where_maxima_are_unique(shape):
  x = jax.random.normal(jax.random.key(0), shape)
  bias = jax.random.normal(jax.random.key(1), shape[-1:])
  g = jax.random.normal(jax.random.key(2), _reference(x, bias).shape)
  for impl in pooling.POOL_IMPLS:
    ours = lambda x, b, impl=impl: pooling.relu_max_pool(x, 2, impl, bias=b)
    np.testing.assert_allclose(ours(x, bias), _reference(x, bias))
    got = jax.vjp(ours, x, bias)[1](g)
    want = jax.vjp(_reference, x, bias)[1](g)
    for a, b in zip(got, want, strict=True):
      np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6, err_msg=impl)
  assert float(jnp.abs(want[1]).max()) > 0


@pytest.mark.parametrize("shape", SHAPES)
def test_argmax_pool_gives_each_window_gradient_to_its_first_maximum(shape):
  x = jnp.ones(shape)  # every window is one big tie
  pooled, vjp = jax.vjp(lambda x: pooling.max_pool(x, 2, "argmax"), x)
  (grad,) = vjp(jnp.ones_like(pooled))
  assert float(grad.sum()) == pooled.size  # one position per window, not all eight
  first = grad[(slice(None), *(slice(0, None, 2),) * (x.ndim - 2))]
  assert float(first[(slice(None), *(slice(0, n // 2) for n in x.shape[1:-1]))].min()) == 1.0
  # JAX's own gradient of a reshape-and-max splits a tie instead.
  (split,) = jax.vjp(lambda x: pooling.max_pool(x, 2, "reshape"), x)[1](jnp.ones_like(pooled))
  assert float(split.max()) == pytest.approx(1 / 2 ** (x.ndim - 2))


def test_relu_cuts_whole_windows_off_in_value_and_gradient():
  x = -jnp.ones((1, 4, 4, 2))
  y, vjp = jax.vjp(lambda x: pooling.relu_max_pool(x, 2, "argmax"), x)
  assert float(jnp.abs(y).max()) == 0.0
  assert float(jnp.abs(vjp(jnp.ones_like(y))[0]).max()) == 0.0


def test_unknown_impl_names_the_valid_ones():
  with pytest.raises(ValueError, match="argmax"):
    pooling.max_pool(jnp.ones((1, 4, 4, 1)), 2, "median")
