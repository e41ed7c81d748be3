"""The PyTorch reference computes the same function as the Flax BugCNN3D."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

torch = pytest.importorskip("torch")

from benchmarks.torch_reference import from_flax, smoothgrad_loop  # noqa: E402
from bugnist_jax.models import get_model  # noqa: E402

SHAPE = (32, 16, 16)


@pytest.fixture(scope="module")
def pair():
  model = get_model("bugcnn3d", input_shape=SHAPE, channels=(4, 6, 8, 8), dense=16, num_classes=5)
  x = np.random.default_rng(0).normal(size=(2, *SHAPE, 1)).astype(np.float32)
  return model, from_flax(model), x


def _ncdhw(x: np.ndarray) -> torch.Tensor:
  return torch.from_numpy(x).permute(0, 4, 1, 2, 3).contiguous()


def test_logits_agree(pair):
  model, ref, x = pair
  expected = np.asarray(model(jnp.asarray(x)))
  got = ref(_ncdhw(x)).detach().numpy()
  assert np.abs(expected).max() > 1e-3  # a non-trivial function
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_gradients_agree(pair):
  """d(sum of logits * w)/d(input) and /d(every parameter) match, in each one's layout."""
  model, ref, x = pair
  w = np.random.default_rng(1).normal(size=(2, 5)).astype(np.float32)
  loss = lambda m, v: jnp.sum(m(v) * w)
  grad_x = jax.grad(loss, argnums=1)(model, jnp.asarray(x))
  grads = nnx.grad(loss)(model, jnp.asarray(x))
  # A model whose parameters are the gradients, mapped by the same weight copy.
  grad_model = nnx.clone(model)
  nnx.update(grad_model, grads)
  expected = from_flax(grad_model).state_dict()

  xt = _ncdhw(x).requires_grad_(True)
  (ref(xt) * torch.from_numpy(w)).sum().backward()
  np.testing.assert_allclose(
    xt.grad.permute(0, 2, 3, 4, 1).numpy(), np.asarray(grad_x), rtol=1e-3, atol=1e-6
  )
  for name, p in ref.named_parameters():
    np.testing.assert_allclose(p.grad.numpy(), expected[name].numpy(), rtol=1e-3, atol=1e-6)
  ref.zero_grad()


def test_smoothgrad_loop_zero_noise_is_the_gradient(pair):
  _, ref, x = pair
  xt = _ncdhw(x[:1])
  sg = smoothgrad_loop(ref, xt, 2, num_samples=2, sigma=0.0)
  v = xt.clone().requires_grad_(True)
  ref(v)[0, 2].backward()
  np.testing.assert_allclose(sg.numpy(), v.grad.numpy(), rtol=1e-5, atol=1e-7)
  ref.zero_grad()
