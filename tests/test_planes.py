"""planes.conv_general_dilated computes XLA's convolution, and its hand-written gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from bugnist_jax.models import planes


def _reference(x, w, padding, strides=None):
  names = ("NHWC", "HWIO", "NHWC") if x.ndim == 4 else ("NDHWC", "DHWIO", "NDHWC")
  strides = strides or (1,) * (x.ndim - 2)
  return lax.conv_general_dilated(
    x, w, strides, padding, dimension_numbers=names, precision=lax.Precision.HIGHEST
  )


# (spatial, Cin, Cout, kernel, padding): every path of planes._correlate in both directions
# (shift-add for Cin < 4, col2im for Cout < 4, 2D convolutions otherwise), odd and even and
# anisotropic kernels, 'SAME', 'VALID' and explicit (asymmetric, so the backward pass crops).
CASES = [
  ((7, 6, 5), 1, 5, (3, 3, 3), "SAME"),
  ((7, 6, 5), 5, 1, (3, 3, 3), "SAME"),
  ((7, 6, 5), 5, 6, (3, 3, 3), "SAME"),
  ((7, 6, 5), 4, 4, (2, 2, 2), "SAME"),
  ((7, 6, 5), 5, 6, (3, 1, 2), "VALID"),
  ((7, 6, 5), 6, 2, (3, 1, 2), ((1, 0), (0, 0), (1, 0))),
  ((9, 8), 1, 5, (3, 3), "SAME"),
  ((9, 8), 5, 6, (2, 3), ((1, 0), (0, 1))),
  ((9, 8), 6, 2, (3, 3), "VALID"),
]


# Strided (3D: space-to-depth) and 1x1 (matmul) cases, with strides (spatial, Cin, Cout,
# kernel, padding, strides): ResNet's 3x3x3/2 and 7x7x7/2 stem (Cin = 1: narrow after the
# space-to-depth too), R(2+1)D's (1,3,3)/(1,2,2) and (3,1,1)/(2,1,1), odd sizes and kernels
# longer than what the stride reaches at the end (cropped), 1x1 shortcuts at stride 1 and 2.
STRIDED = [
  ((7, 6, 5), 3, 5, (3, 3, 3), ((1, 1),) * 3, (2, 2, 2)),
  ((9, 8, 7), 1, 6, (7, 7, 7), ((3, 3),) * 3, (2, 2, 2)),
  ((7, 6, 5), 5, 6, (1, 3, 3), ((0, 0), (1, 1), (1, 1)), (1, 2, 2)),
  ((7, 6, 5), 5, 6, (3, 1, 1), ((1, 1), (0, 0), (0, 0)), (2, 1, 1)),
  ((8, 6, 5), 6, 2, (2, 3, 2), "VALID", (3, 2, 2)),
  ((7, 6, 5), 5, 6, (1, 1, 1), "VALID", (2, 2, 2)),
  ((7, 6, 5), 5, 6, (1, 1, 1), "SAME", (1, 1, 1)),
  ((9, 8), 5, 6, (1, 1), ((0, 0), (0, 0)), (2, 2)),
]


@pytest.mark.parametrize(
  "spatial, cin, cout, kernel, padding, strides",
  [(*c, (1,) * len(c[0])) for c in CASES] + STRIDED,
)
def test_values_and_both_gradients_match_xla(spatial, cin, cout, kernel, padding, strides):
  keys = jax.random.split(jax.random.key(len(spatial) * 100 + cin * 10 + cout), 3)
  x = jax.random.normal(keys[0], (2, *spatial, cin))
  w = jax.random.normal(keys[1], (*kernel, cin, cout))
  ours = lambda x, w: planes.conv_general_dilated(x, w, strides, padding)
  pads = (
    lax.padtype_to_pads(spatial, kernel, strides, padding) if isinstance(padding, str) else padding
  )
  ref = lambda x, w: _reference(x, w, pads, strides)
  y, y_ref = jax.jit(ours)(x, w), ref(x, w)
  assert y.shape == y_ref.shape
  np.testing.assert_allclose(y, y_ref, rtol=1e-4, atol=1e-4)
  g = jax.random.normal(keys[2], y.shape)
  grads = jax.jit(lambda x, w, g: jax.vjp(ours, x, w)[1](g))(x, w, g)
  for got, want in zip(grads, jax.vjp(ref, x, w)[1](g), strict=True):
    assert float(jnp.abs(want).max()) > 0
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-4)


def _primitives(fn, *args) -> set[str]:
  return {e.primitive.name for e in jax.make_jaxpr(fn)(*args).eqns}


def test_strided_3d_and_pointwise_convolutions_take_the_fast_paths():
  x = jnp.zeros((1, 8, 8, 8, 4))
  strided = _primitives(
    lambda x: planes.conv_general_dilated(x, jnp.zeros((3, 3, 3, 4, 5)), (2, 2, 2), "SAME"), x
  )
  assert "custom_vjp_call" in strided and "conv_general_dilated" not in strided
  pointwise = _primitives(
    lambda x: planes.conv_general_dilated(x, jnp.zeros((1, 1, 1, 4, 5)), (2, 2, 2), "VALID"), x
  )
  assert "dot_general" in pointwise and "conv_general_dilated" not in pointwise


def test_strided_dilated_and_channels_first_convolutions_fall_back_to_xla():
  x = jax.random.normal(jax.random.key(0), (1, 9, 8, 4))
  w = jax.random.normal(jax.random.key(1), (3, 3, 4, 5))
  ours = planes.conv_general_dilated(x, w, (2, 2), "SAME", rhs_dilation=(1, 2))
  ref = lax.conv_general_dilated(
    x, w, (2, 2), "SAME", rhs_dilation=(1, 2), dimension_numbers=("NHWC", "HWIO", "NHWC")
  )
  np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)
  # Channels-first numbers are honoured, not read as channels-last.
  xc, wc = jnp.moveaxis(x, -1, 1), jnp.transpose(w, (3, 2, 0, 1))
  names = ("NCHW", "OIHW", "NCHW")
  ours = planes.conv_general_dilated(xc, wc, (1, 1), "SAME", dimension_numbers=names)
  ref = lax.conv_general_dilated(xc, wc, (1, 1), "SAME", dimension_numbers=names)
  np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cin, cout", [(1, 6), (6, 1)])
def test_bfloat16_sums_in_float32_like_xla(cin, cout):
  """Shift-add and col2im add their 27 taps in float32: bf16 results stay as close to the
  float32 truth as XLA's own bf16 convolution."""
  x = jax.random.normal(jax.random.key(2), (2, 6, 6, 6, cin))
  w = jax.random.normal(jax.random.key(3), (3, 3, 3, cin, cout))
  truth = _reference(x, w, "SAME")
  xb, wb = x.astype(jnp.bfloat16), w.astype(jnp.bfloat16)
  ours = planes.conv_general_dilated(xb, wb, (1, 1, 1), "SAME")
  theirs = _reference(xb, wb, "SAME")
  assert ours.dtype == jnp.bfloat16
  err = lambda y: float(jnp.abs(y.astype(jnp.float32) - truth).max())
  assert err(ours) <= 1.5 * err(theirs) + 1e-3


@pytest.mark.parametrize("cin", [2, 5], ids=["shift-add", "depth-taps"])
def test_conv_pool_is_the_pooled_convolution_and_keeps_its_gradient(cin):
  """Inference pools inside the convolution (odd sizes crop like the pool, asymmetric
  padding); the gradient is the unfused composition's."""
  from bugnist_jax.models.pooling import relu_max_pool

  spatial, pads = (7, 6, 5), ((1, 1), (0, 2), (1, 0))
  keys = jax.random.split(jax.random.key(cin), 3)
  x = jax.random.normal(keys[0], (2, *spatial, cin))
  w = jax.random.normal(keys[1], (3, 3, 3, cin, 4))
  b = jax.random.normal(keys[2], (4,))
  # jitted: op by op, the 2^ndim x 27 slices take most of a minute to dispatch.
  unfused = jax.jit(lambda x, w, b: relu_max_pool(planes.conv(x, w, pads), 2, "argmax", bias=b))
  fused = jax.jit(lambda x, w, b: planes.conv_pool(x, w, b, pads, 2))
  want = unfused(x, w, b)
  assert want.shape == (2, 3, 3, 2, 4)
  np.testing.assert_allclose(fused(x, w, b), want, rtol=1e-5, atol=1e-5)
  loss = lambda f: lambda *a: jnp.sum(f(*a) ** 2)
  grad = lambda f: jax.jit(jax.grad(loss(f), (0, 1, 2)))
  got, ref = grad(fused)(x, w, b), grad(unfused)(x, w, b)
  for g, r in zip(got, ref, strict=True):
    np.testing.assert_allclose(g, r, rtol=1e-6, atol=1e-6)
