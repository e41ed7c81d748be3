"""Feature visualisation (`bugnist_jax.featurevis`): known filters, rising objectives, chunking,
3D, parameterisations, the spectral share, and bad arguments."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bugnist_jax import featurevis as fv
from bugnist_jax.featurevis.image import ImageParam
from bugnist_jax.models import get_model
from bugnist_jax.models.adapters import stage_fn

NONE = fv.Transforms()


def _conv(kernel: np.ndarray):
  """features(x) = relu(conv(x, kernel)), VALID: channel c of its output is filter c."""
  k = jnp.asarray(kernel)
  spatial = "DHW"[3 - (k.ndim - 2) :]
  numbers = (f"N{spatial}C", f"{spatial}IO", f"N{spatial}C")
  ones = (1,) * (k.ndim - 2)
  return lambda x: jax.nn.relu(
    jax.lax.conv_general_dilated(x, k, ones, "VALID", None, None, numbers)
  )


def _correlation(a, b) -> float:
  return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


@pytest.mark.parametrize("parameterization", ["pixel", "fourier"])
def test_neuron_result_is_the_filter_of_a_known_linear_channel(parameterization):
  kernel = np.random.default_rng(0).normal(size=(5, 5, 3, 3)).astype(np.float32)
  # With an L2 penalty the optimum of <w, patch> - l2 * mean(x^2) is proportional to w on the
  # neuron's receptive field (the centre, rows and columns 6..10 of the 12x12 map) and 0 off it.
  out = fv.visualize(
    _conv(kernel),
    (16, 16, 3),
    [0, 1, 2],
    key=jax.random.key(0),
    objective="neuron",
    parameterization=parameterization,
    steps=60,
    l2=300.0,
    transforms=NONE,
  )
  images = np.asarray(out.images)
  assert images.shape == (3, 16, 16, 3)
  for c in range(3):
    assert _correlation(images[c, 6:11, 6:11], kernel[..., c]) > 0.95
    assert _correlation(images[c, 6:11, 6:11], kernel[..., (c + 1) % 3]) < 0.6
    outside = np.abs(images[c]).sum() - np.abs(images[c, 6:11, 6:11]).sum()
    assert outside < 0.2 * np.abs(images[c]).sum()
  assert np.all(np.asarray(out.activation) > 0)


def test_3d_neuron_matches_its_filter_and_flips_keep_shapes():
  kernel = np.random.default_rng(1).normal(size=(3, 3, 3, 1, 2)).astype(np.float32)
  out = fv.visualize(
    _conv(kernel),
    (8, 8, 8, 1),
    [0, 1],
    key=jax.random.key(1),
    objective="neuron",
    steps=60,
    l2=300.0,
    transforms=NONE,
  )
  assert out.images.shape == (2, 8, 8, 8, 1) and out.history.shape == (60, 2)
  for c in range(2):  # the centre of the 6^3 map is (3, 3, 3): input 3..5 on every axis
    assert _correlation(out.images[c, 3:6, 3:6, 3:6], kernel[..., c]) > 0.95


def test_objective_rises_over_the_steps_in_3d_on_a_real_model():
  model = get_model("bugcnn3d", input_shape=(16, 16, 16), channels=(2, 3, 4, 4), dense=6)
  features = stage_fn(model, None, "block2")
  out = fv.visualize(
    features, (16, 16, 16, 1), [0, 1, 2], key=jax.random.key(0), steps=15, value_range=(-2, 3)
  )  # default 3D transforms: roll and flips
  history = np.asarray(out.history)
  assert out.images.shape == (3, 16, 16, 16, 1) and np.isfinite(out.images).all()
  # Over 2x in 15 steps on every channel (seen: 2.3x-3.7x; the transforms make it noisy).
  assert np.all(history[-5:].mean(0) > 2 * history[:5].mean(0) + 1e-6)
  start = fv.objective(features(jnp.zeros((3, 16, 16, 16, 1))), jnp.arange(3), "channel", None)
  assert np.all(np.asarray(out.activation) > np.asarray(start))
  lo, hi = float(out.images.min()), float(out.images.max())
  assert lo >= -2.0 and hi <= 3.0  # the sigmoid keeps images in the value range


def test_chunking_does_not_change_the_result():
  kernel = np.random.default_rng(2).normal(size=(3, 3, 2, 5)).astype(np.float32)
  kw = dict(key=jax.random.key(3), steps=8, transforms=fv.Transforms(roll=2, scale=0.1, rotate=5))
  features = _conv(kernel)
  whole = fv.visualize(features, (12, 12, 2), [4, 0, 3, 1, 2], **kw)
  part = fv.visualize(features, (12, 12, 2), [4, 0, 3, 1, 2], batch_size=2, **kw)  # 3 chunks
  np.testing.assert_allclose(part.images, whole.images, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(part.history, whole.history, rtol=1e-4, atol=1e-5)


def test_class_objective_and_diversity_variants():
  w = np.random.default_rng(4).normal(size=(6 * 6 * 1, 3)).astype(np.float32)
  logits = lambda x: x.reshape(x.shape[0], -1) @ w
  out = fv.visualize(
    logits,
    (6, 6, 1),
    [2],
    key=jax.random.key(0),
    objective="class",
    parameterization="pixel",
    steps=40,
    l2=100.0,
    transforms=NONE,
  )
  assert _correlation(out.images[0], w[:, 2]) > 0.95
  conv = _conv(np.random.default_rng(5).normal(size=(3, 3, 1, 2)).astype(np.float32))
  div = fv.visualize(
    conv,
    (10, 10, 1),
    [0, 1],
    key=jax.random.key(0),
    steps=10,
    variants=2,
    diversity=1.0,
    transforms=NONE,
  )
  assert div.images.shape == (2, 2, 10, 10, 1) and div.activation.shape == (2, 2)
  assert not np.allclose(div.images[:, 0], div.images[:, 1])


def test_init_from_an_image_is_kept_by_zero_steps_of_learning():
  x = np.random.default_rng(6).uniform(-1.5, 2.5, (2, 8, 10, 3)).astype(np.float32)
  for kind in ("pixel", "fourier"):
    color = fv.color_correlation(np.random.default_rng(7).normal(size=(50, 4, 4, 3)))
    param = ImageParam((8, 10), 3, kind, 1.0, tuple(map(tuple, color.tolist())), (-2.0, 3.0))
    np.testing.assert_allclose(param.image(param.params_of(jnp.asarray(x))), x, atol=2e-4)
  out = fv.visualize(
    _conv(np.ones((3, 3, 3, 1), np.float32)),
    (8, 10, 3),
    [0, 0],
    init=x,
    key=jax.random.key(0),
    steps=1,
    learning_rate=0.0,
    value_range=(-2, 3),
  )
  np.testing.assert_allclose(out.images, x, atol=2e-4)


def test_blur_is_the_same_for_both_bases_and_keeps_the_mean():
  rng = np.random.default_rng(8)
  pixel, fourier = ImageParam((8, 12), 2, "pixel"), ImageParam((8, 12), 2, "fourier")
  z = jnp.asarray(rng.normal(size=(1, 8, 12, 2)).astype(np.float32))
  blurred = pixel.blur(z, 1.0)
  np.testing.assert_allclose(
    fourier.latent(fourier.blur(fourier.params_of(z), 1.0)), blurred, atol=1e-5
  )
  np.testing.assert_allclose(blurred.mean((1, 2)), z.mean((1, 2)), atol=1e-5)
  assert float(jnp.abs(jnp.diff(blurred, axis=1)).mean()) < 0.5 * float(
    jnp.abs(jnp.diff(z, axis=1)).mean()
  )


def test_high_frequency_share_of_known_images():
  y, x = np.mgrid[:32, :32]
  checker = ((y + x) % 2).astype(float)[None]  # all energy at the Nyquist corner
  blob = np.exp(-((y - 16.0) ** 2 + (x - 16.0) ** 2) / 50.0)[None]
  noise = np.random.default_rng(9).normal(size=(1, 64, 64))
  share = lambda a: float(fv.high_frequency_share(a, axes=(1, 2))[0])
  assert share(checker) == pytest.approx(1.0)
  assert share(blob) < 1e-3
  assert share(noise) == pytest.approx(1 - np.pi * 0.25**2, abs=0.03)  # outside a disc r=1/4
  kernel = np.zeros((3, 3, 1, 2))
  kernel[..., 0, 0] = [[1, -1, 1], [-1, 1, -1], [1, -1, 1]]
  kernel[..., 0, 1] = 1.0
  shares = fv.kernel_high_frequency_share(kernel)
  assert shares.shape == (2,) and shares[0] > 0.5 > shares[1]


def test_bad_arguments_raise_value_errors_naming_them():
  features = _conv(np.ones((3, 3, 1, 4), np.float32))
  ok = dict(key=jax.random.key(0), steps=2)
  cases = [
    ("channels", dict(input_shape=(8, 8, 1), channels=[4])),
    ("channels", dict(input_shape=(8, 8, 1), channels=[])),
    ("input_shape", dict(input_shape=(8, 8, 2), channels=[0])),
    ("input_shape", dict(input_shape=(8, 1), channels=[0])),
    ("objective", dict(input_shape=(8, 8, 1), channels=[0], objective="mean")),
    ("objective", dict(input_shape=(8, 8, 1), channels=[0], objective="class")),
    ("position", dict(input_shape=(8, 8, 1), channels=[0], objective="neuron", position=(6, 0))),
    ("init", dict(input_shape=(8, 8, 1), channels=[0], init=np.zeros((2, 8, 8, 1)))),
    ("diversity", dict(input_shape=(8, 8, 1), channels=[0], diversity=1.0)),
    (
      "transforms.rotate",
      dict(input_shape=(8, 8, 8, 1), channels=[0], transforms=fv.Transforms(rotate=5)),
    ),
    ("batch_size", dict(input_shape=(8, 8, 1), channels=[0], batch_size=0)),
    ("parameterization", dict(input_shape=(8, 8, 1), channels=[0], parameterization="dct")),
  ]
  for name, kw in cases:
    if kw["input_shape"] == (8, 8, 8, 1):
      f = _conv(np.ones((3, 3, 3, 1, 4), np.float32))
    else:
      f = features
    with pytest.raises(ValueError, match=f"^{name}:"):
      fv.visualize(f, **kw, **ok)


def test_package_imports_only_jax_optax_and_numpy():
  code = (
    "import sys, bugnist_jax.featurevis\n"
    "bad = [m for m in sys.modules if m.split('.')[0] in ('flax', 'torch', 'matplotlib')\n"
    "       or m.startswith(('bugnist_jax.models', 'bugnist_jax.training', 'bugnist_jax.data',\n"
    "                        'bugnist_jax.runs', 'bugnist_jax.commands'))]\n"
    "assert not bad, bad\n"
    "ours = [m for m in sys.modules if m.startswith('bugnist_jax.')\n"
    "        and not m.startswith(('bugnist_jax.featurevis', 'bugnist_jax.interrupts'))]\n"
    "assert not ours, ours  # nothing else of ours (the package's __init__ loads interrupts)\n"
  )
  subprocess.run([sys.executable, "-c", code], check=True)


def test_the_featurevis_benchmark_times_a_tiny_3d_model():
  from benchmarks import featurevis as bench
  from benchmarks.measure import run_interleaved

  (r,) = run_interleaved([bench.runner(*bench.TINY[1], 2)], repeats=1, warmup=0)
  assert r["kind"] == "featurevis" and r["shape"] == [16, 16, 16] and r["channels"] == 4
  assert r["compile_s"] > 0 and r["rate_median"] == pytest.approx(4 / r["times_s"][0])
  assert "featurevis bugcnn3d 16x16x16 block2 b=2 | 4 x 4 |" in bench.table([r])
