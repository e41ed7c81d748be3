"""Every conv_impl x pool_impl variant computes the same function as 'xla'/'window'."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from bugnist_jax.models import get_model, layers, planes
from bugnist_jax.models.layers import CONV_IMPLS, ConvBlock
from bugnist_jax.models.pooling import POOL_IMPLS

VARIANTS = [v for v in itertools.product(CONV_IMPLS, POOL_IMPLS) if v != ("xla", "window")]


class Tiny2D(nnx.Module):
  """Two 2D ConvBlocks and a mean: a scalar per sample.

  In 'planes', Cin=3 takes shift-add, Cin=4 a 2D convolution, and the input gradient of the
  first block (Cout=3) col2im.
  """

  def __init__(self, conv_impl: str, pool_impl: str):
    kw = dict(ndim=2, conv_impl=conv_impl, pool_impl=pool_impl, rngs=nnx.Rngs(0))
    self.a = ConvBlock(3, 4, **kw)
    self.b = ConvBlock(4, 6, **kw)

  def __call__(self, x):
    return jnp.mean(self.b(self.a(x)), axis=(1, 2))


def _model(ndim: int, conv_impl: str, pool_impl: str) -> nnx.Module:
  if ndim == 2:
    return Tiny2D(conv_impl, pool_impl)
  tiny = dict(input_shape=(32, 16, 16), channels=(4, 6, 8, 8), dense=8, num_classes=3)
  return get_model("bugcnn3d", conv_impl=conv_impl, pool_impl=pool_impl, **tiny)


@nnx.jit  # one compile per variant instead of one per eager op
def _outputs(model: nnx.Module, x: jax.Array):
  """Logits, d(loss)/d(input) and d(loss)/d(params) as flat arrays."""
  w = jnp.linspace(-1.0, 1.0, model(x).size).reshape(model(x).shape)
  loss = lambda m, v: jnp.sum(m(v) * w)
  grad_x = jax.grad(loss, argnums=1)(model, x)
  grads = jax.tree.leaves(nnx.grad(loss)(model, x))
  return model(x), grad_x, grads


# Odd sizes (10x9, 33x17x16) check that the reshape pool floors like 'VALID' windows.
INPUTS = {2: (2, 10, 9, 3), 3: (2, 33, 17, 16, 1)}


@pytest.mark.parametrize("ndim", [2, 3])
def test_variants_compute_the_same_function(ndim):
  x = jax.random.normal(jax.random.key(ndim), INPUTS[ndim])
  ref = _outputs(_model(ndim, "xla", "window"), x)
  assert float(jnp.abs(ref[1]).max()) > 0  # gradients reach the input
  for conv_impl, pool_impl in VARIANTS:
    got = _outputs(_model(ndim, conv_impl, pool_impl), x)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref), strict=True):
      np.testing.assert_allclose(
        np.asarray(a), np.asarray(b), rtol=2e-4, atol=1e-5, err_msg=f"{conv_impl}/{pool_impl}"
      )


def test_unknown_impl_names_the_valid_ones():
  with pytest.raises(ValueError, match="planes"):
    ConvBlock(1, 2, ndim=3, conv_impl="fft", rngs=nnx.Rngs(0))


def test_second_order_gradients_match_xla():
  """Input gradients inside the loss ("right for the right reasons") differentiate the
  hand-written gradients of 'planes' and 'argmax' once more."""
  x = jax.random.normal(jax.random.key(7), INPUTS[3])

  @nnx.jit
  def grads(model):
    def loss(model):
      g = jax.grad(lambda v: jnp.sum(jax.nn.log_softmax(model(v))))(x)
      return jnp.sum(g**2)

    return jax.tree.leaves(nnx.grad(loss)(model))

  ref = grads(_model(3, "xla", "reshape"))
  for a, b in zip(grads(_model(3, "planes", "argmax")), ref, strict=True):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-3, atol=1e-5)
  assert max(float(jnp.abs(b).max()) for b in ref) > 0


def test_reference_traces_planes_models_to_xlas_convolutions():
  """Inside `planes.reference()` a 'planes' model traces to XLA's convolutions (what LRP's
  rewrite needs: no unrolled kernels, no fused conv + pool) and computes the same function."""
  model = _model(3, "planes", "argmax")
  x = jax.random.normal(jax.random.key(1), (2, 32, 16, 16, 1))

  def names(jaxpr):
    return {e.primitive.name for e in jaxpr.eqns}

  def size(jaxpr):  # equations, those of the calls' bodies included
    inner = [p.jaxpr for e in jaxpr.eqns for p in e.params.values() if hasattr(p, "jaxpr")]
    return len(jaxpr.eqns) + sum(size(j) for j in inner)

  # Fresh functions: jax's trace caches do not know the context.
  fast = jax.make_jaxpr(lambda v: model(v))(x).jaxpr
  with planes.reference():
    ref = jax.make_jaxpr(lambda v: model(v))(x).jaxpr
    ref_out = jax.jit(lambda v: model(v))(x)  # jitted: eager dispatch of the fast path is slow
  assert "conv_general_dilated" not in names(fast) and "custom_vjp_call" in names(fast)
  assert "conv_general_dilated" in names(ref) and size(ref) < size(fast) / 10
  assert planes.pools_in_conv(x)  # the context is gone: back to the fast paths
  np.testing.assert_allclose(ref_out, jax.jit(lambda v: model(v))(x), rtol=1e-5, atol=1e-5)


def test_auto_is_the_fast_path_on_cpu_unless_the_environment_names_another(monkeypatch):
  monkeypatch.delenv(layers.CONV_IMPL_ENV, raising=False)
  assert layers.resolve_conv_impl("auto") == ("planes" if jax.default_backend() == "cpu" else "xla")
  monkeypatch.setenv(layers.CONV_IMPL_ENV, "planes")
  assert layers.resolve_conv_impl("auto") == "planes"
  assert layers.resolve_conv_impl("xla") == "xla"  # a named impl is kept
  monkeypatch.setenv(layers.CONV_IMPL_ENV, "fft")
  with pytest.raises(ValueError, match="BUGNIST_CONV_IMPL: unknown 'fft'; valid: xla, planes"):
    layers.resolve_conv_impl("auto")
