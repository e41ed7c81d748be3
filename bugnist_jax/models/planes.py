"""Convolutions for XLA:CPU: 3D as 2D convolutions over planes, with a hand-written gradient.

XLA's CPU backend runs 3D convolutions at 1-60 GFLOP/s (the wide early layers slowest), but 2D
convolutions (Eigen) at 100-167 and large matmuls at 130-177 on the project's 2-core machine.
`conv_general_dilated` here is a drop-in for `lax.conv_general_dilated` in nnx.Conv (same
parameters, same function) that computes every direction of a stride-1 convolution with those
fast kernels:

- forward and input gradient (a correlation with the flipped kernel), chosen by width:
  - few input channels (the first layer, Cin = 1): "shift-add", the sum over kernel taps of
    shifted inputs times weight rows, elementwise;
  - few output channels (the input gradient of that layer): "col2im", one matmul to every
    tap's contribution, then the shifted sum;
  - otherwise: 2D convolutions over the (H, W) planes whose output channels hold one block per
    depth tap, then a shifted sum over depth (3D), or a plain 2D convolution (2D);
- kernel gradient: a 2D convolution with the roles swapped (batch and W are the contracted
  "features", the (D, H) plane of the output gradient the kernel), which Eigen runs without
  materialising im2col.

Two more shapes keep to fast kernels:
- 1x1 convolutions (ResNet's shortcuts and bottlenecks, DenseNet's) are one matmul
  `[B * S, Cin] x [Cin, Cout]` after subsampling by the stride (`pointwise`), and XLA's
  gradients of it are matmuls too;
- strided 3D convolutions become stride-1 ones of a space-to-depth input (`strided`), so they
  take the paths above in every direction; XLA's own input gradient of a strided 3D convolution
  (an lhs-dilated convolution) runs off every fast path.

Measured on the 2-core CPU, BugCNN3D at 128x64x64, batch 4 (benchmarks/RESULTS.md for the whole
model): the second layer's forward, input and kernel gradient take about 55, 55 and 80-90 ms
against 306, 511 and 522 ms through XLA's 3D convolution. A 3x3x3 stride-2 convolution 64 -> 128
at 16x8x8, batch 8: 17, 16 and 18 ms against XLA's 12, 841 and 64 ms (a loaded machine, the
issue-11 notes). Strided 2D convolutions (Eigen's own case: faster than ours), dilation,
feature groups and other ranks go to `lax.conv_general_dilated` unchanged: same function.

These kernels are fast only when XLA:CPU hands convolutions to Eigen, which `bugnist_jax.compile`
asks for on every top-level jit (XLA's newer YNNPACK convolutions were 2x slower here). The
gradient is a custom VJP: reverse mode (grad, vjp, grad of grad) only; for forward mode (jvp,
jacfwd, hessian) use conv_impl='xla'.

Code that rewrites a traced model instead of differentiating it (LRP's jaxpr interpreter enters
custom-VJP calls and drops their rules) would unroll these kernels' primal: for BugCNN3D's fused
conv + pool, every tap of every pooling parity, 88,000 equations that took XLA 10 minutes to
compile at 16^3. Inside `with planes.reference():` the same models trace to XLA's convolutions
(same function, same parameters), 650 equations.
"""

import contextlib
import contextvars
import functools
import itertools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax

from bugnist_jax.models.pooling import relu_max_pool

# Below this many input (output) channels, shift-add (col2im) beats a 2D convolution on CPU.
NARROW = 4
_DN2 = ("NHWC", "HWIO", "NHWC")
Pads = tuple[tuple[int, int], ...]
_REFERENCE = contextvars.ContextVar("planes_reference", default=False)


@contextlib.contextmanager
def reference():
  """While tracing inside: `conv_general_dilated` is `lax.conv_general_dilated` and nothing
  pools inside a convolution (`pools_in_conv` is False), for jaxpr rewrites (module docstring)."""
  token = _REFERENCE.set(True)
  try:
    yield
  finally:
    _REFERENCE.reset(token)


def conv_general_dilated(
  lhs: jax.Array,
  rhs: jax.Array,
  window_strides: Sequence[int],
  padding,
  lhs_dilation=None,
  rhs_dilation=None,
  dimension_numbers=None,
  feature_group_count: int = 1,
  precision=None,
  preferred_element_type=None,
  out_sharding=None,
) -> jax.Array:
  """Channels-last lhs [B, *S, Cin] * rhs [*K, Cin, Cout] -> [B, *S', Cout], 2 or 3 spatial axes.

  The signature nnx.Conv calls (`conv_general_dilated=`). 1x1 convolutions are matmuls
  (`pointwise`), strided ones stride-1 convolutions of a space-to-depth input (`strided`);
  dilated, grouped or channels-first convolutions go to `lax.conv_general_dilated` as they are.
  """
  n = lhs.ndim - 2
  spatial, kernel = lhs.shape[1:-1], rhs.shape[:-2]
  channels_last = lax.ConvDimensionNumbers(
    (0, n + 1, *range(1, n + 1)), (n + 1, n, *range(n)), (0, n + 1, *range(1, n + 1))
  )
  numbers = dimension_numbers or channels_last
  unit = lambda v: v is None or all(d == 1 for d in v)
  strides = tuple(int(s) for s in window_strides)
  pads = padding
  if isinstance(padding, str):
    pads = lax.padtype_to_pads(spatial, kernel, strides, padding)
  pads = tuple((int(lo), int(hi)) for lo, hi in pads)
  pointwise_kernel = all(k == 1 for k in kernel) and not any(lo or hi for lo, hi in pads)
  if (
    _REFERENCE.get()
    or n not in (2, 3)
    or lax.conv_dimension_numbers(lhs.shape, rhs.shape, numbers) != channels_last
    # Strided 2D convolutions are Eigen's own case, gradients included (faster than ours).
    or (n == 2 and not unit(window_strides) and not pointwise_kernel)
    or not unit(lhs_dilation)
    or not unit(rhs_dilation)
    or feature_group_count != 1
    or preferred_element_type is not None
    or out_sharding is not None
  ):
    return lax.conv_general_dilated(
      lhs,
      rhs,
      window_strides,
      padding,
      lhs_dilation,
      rhs_dilation,
      numbers,
      feature_group_count,
      precision=precision,
      preferred_element_type=preferred_element_type,
      **({} if out_sharding is None else {"out_sharding": out_sharding}),
    )
  if pointwise_kernel:
    return pointwise(lhs, rhs, strides, precision)
  if any(s > 1 for s in strides):
    return strided(lhs, rhs, strides, pads, precision)
  return conv(lhs, rhs, pads, precision)


def pointwise(x: jax.Array, w: jax.Array, strides: Sequence[int], precision=None) -> jax.Array:
  """A 1x1 convolution, x [B, *S, Cin] * w [1, .., 1, Cin, Cout]: subsample, then one matmul
  [B * S', Cin] x [Cin, Cout]. XLA differentiates it into two more matmuls."""
  x = x[(slice(None), *(slice(None, None, s) for s in strides))]
  return jnp.einsum("...i,io->...o", x, w.reshape(w.shape[-2:]), precision=precision)


def strided(x: jax.Array, w: jax.Array, strides: Sequence[int], pads: Pads, precision=None):
  """A strided correlation as a stride-1 one (`conv`, with its fast gradients).

  Space-to-depth: along an axis of stride s, padded input position s * j + p becomes position
  j, phase p, and kernel tap t = s * q + p becomes tap q, phase p, so output o (reading
  s * o + t) reads j = o + q: a stride-1 correlation over ceil(k / s) taps and s times the
  channels, phases and channels flattened together. Taps past k are zero, which costs
  (s * ceil(k / s))^n / k^n the FLOPs: 2.4x for a 3x3x3 kernel at stride 2, 1.5x for 7x7x7.
  """
  n, (cin, cout) = x.ndim - 2, w.shape[-2:]
  kernel = w.shape[:-2]
  out = [
    (s + lo + hi - k) // st + 1
    for s, k, st, (lo, hi) in zip(x.shape[1:-1], kernel, strides, pads, strict=True)
  ]
  taps = [-(-k // st) for k, st in zip(kernel, strides, strict=True)]
  cells = [o - 1 + q for o, q in zip(out, taps, strict=True)]  # positions per phase
  # Pad (or crop) every axis to exactly s * cells: what the outputs read, and whole phases.
  fit = tuple(
    (lo, st * c - s - lo)
    for s, st, c, (lo, _) in zip(x.shape[1:-1], strides, cells, pads, strict=True)
  )
  xp = _pad(x, fit)
  split = [d for c, st in zip(cells, strides, strict=True) for d in (c, st)]
  xs = xp.reshape(x.shape[0], *split, cin)
  order = (0, *range(1, 2 * n, 2), *range(2, 2 * n + 1, 2), 2 * n + 1)
  xs = jnp.transpose(xs, order).reshape(x.shape[0], *cells, -1)
  wp = _pad_kernel(
    w, tuple((0, st * q - k) for k, st, q in zip(kernel, strides, taps, strict=True))
  )
  ws = wp.reshape(*(d for q, st in zip(taps, strides, strict=True) for d in (q, st)), cin, cout)
  order = (*range(0, 2 * n, 2), *range(1, 2 * n, 2), 2 * n, 2 * n + 1)
  ws = jnp.transpose(ws, order).reshape(*taps, -1, cout)
  return conv(xs, ws, ((0, 0),) * n, precision)


def _pad_kernel(w, pads):
  config = [*((lo, hi, 0) for lo, hi in pads), (0, 0, 0), (0, 0, 0)]
  return lax.pad(w, jnp.zeros((), w.dtype), config)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv(x: jax.Array, w: jax.Array, pads: Pads, precision=None) -> jax.Array:
  """Stride-1 correlation of x [B, *S, Cin] with w [*K, Cin, Cout], explicit pads per axis."""
  return _correlate(x, w, pads, precision)


def _conv_fwd(x, w, pads, precision):
  return _correlate(x, w, pads, precision), (x, w)


def _conv_bwd(pads, precision, res, g):
  x, w = res
  kernel = w.shape[:-2]
  flipped = jnp.flip(w, tuple(range(len(kernel)))).swapaxes(-1, -2)
  back = tuple((k - 1 - lo, k - 1 - hi) for k, (lo, hi) in zip(kernel, pads, strict=True))
  return _correlate(g, flipped, back, precision), _kernel_grad(x, g, kernel, pads, precision)


conv.defvjp(_conv_fwd, _conv_bwd)


def _correlate(x, w, pads, precision):
  if any(lo < 0 or hi < 0 for lo, hi in pads):  # negative padding crops: do it first
    x = _pad(x, tuple((min(lo, 0), min(hi, 0)) for lo, hi in pads))
    pads = tuple((max(lo, 0), max(hi, 0)) for lo, hi in pads)
  cin, cout = w.shape[-2:]
  if cin < NARROW:
    return _materialize(_shift_add(x, w, pads))
  if cout < NARROW:
    return _materialize(_col2im(x, w, pads, precision))
  if x.ndim == 4:
    return _conv2d(x, w, pads, precision)
  return _materialize(_depth_taps_out(x, w, pads, precision))


def _conv2d(x, w, pads, precision):
  """[N, H, W, I] * [kh, kw, I, O]: Eigen's own layout, so XLA inserts no transposes."""
  return lax.conv_general_dilated(x, w, (1, 1), pads, dimension_numbers=_DN2, precision=precision)


def _out_shape(x, kernel, pads):
  return [s + lo + hi - k + 1 for s, k, (lo, hi) in zip(x.shape[1:-1], kernel, pads, strict=True)]


def _taps(xp, kernel, out):
  """(tap offset, xp shifted to that offset and cut to the output size) for every kernel tap."""
  for offset in itertools.product(*(range(k) for k in kernel)):
    cut = tuple(slice(o, o + n) for o, n in zip(offset, out, strict=True))
    yield offset, xp[(slice(None), *cut)]


def _pad(x, pads):
  """Pads (or, where negative, crops) the spatial axes of x [B, *S, C] with zeros."""
  config = [(0, 0, 0), *((lo, hi, 0) for lo, hi in pads), (0, 0, 0)]
  return lax.pad(x, jnp.zeros((), x.dtype), config)


def _shift_add(x, w, pads):
  """sum over taps t and input channels i of x shifted by t, channel i, times w[t, i, :].

  Summed in float32 (as XLA's convolutions accumulate), cast back to x's dtype.
  """
  kernel, out = w.shape[:-2], _out_shape(x, w.shape[:-2], pads)
  xp, w32 = _pad(x, pads).astype(jnp.float32), w.astype(jnp.float32)
  total = 0
  for offset, xs in _taps(xp, kernel, out):
    for i in range(x.shape[-1]):
      total = total + xs[..., i : i + 1] * w32[(*offset, i)]
  return total.astype(x.dtype)


def _col2im(x, w, pads, precision):
  """Every tap's contribution by one matmul [N, Cin] x [Cin, taps * Cout], then shifted sums
  (in float32, cast back to x's dtype)."""
  kernel, cout = w.shape[:-2], w.shape[-1]
  per_tap = jnp.einsum(
    "...i,tio->...to",
    x,
    w.reshape(-1, *w.shape[-2:]),
    precision=precision,
    preferred_element_type=jnp.float32,
  )
  per_tap = _pad(per_tap.reshape(*x.shape[:-1], -1), pads)
  total = 0
  for t, (_, zs) in enumerate(_taps(per_tap, kernel, _out_shape(x, kernel, pads))):
    total = total + zs[..., t * cout : (t + 1) * cout]
  return total.astype(x.dtype)


def _depth_taps_out(x, w, pads, precision):
  """3D: one 2D conv over all (H, W) planes to kd blocks of Cout, then a shifted sum over D."""
  b, d, h, wd, cin = x.shape
  kd, kh, kw, _, cout = w.shape
  planes_kernel = jnp.moveaxis(w, 0, -2).reshape(kh, kw, cin, kd * cout)
  z = _conv2d(x.reshape(b * d, h, wd, cin), planes_kernel, pads[1:], precision)
  z = _pad(z.reshape(b, d, *z.shape[1:]).astype(jnp.float32), (pads[0], (0, 0), (0, 0)))
  out_d = d + sum(pads[0]) - kd + 1
  total = sum(z[:, t : t + out_d, ..., t * cout : (t + 1) * cout] for t in range(kd))
  return total.astype(x.dtype)


def _kernel_grad(x, g, kernel, pads, precision):
  """d(loss)/dw [*K, Cin, Cout] = sum over batch and positions of x shifted by t (x) g.

  A 2D convolution with the roles swapped: Cin is the batch, the batch (and in 3D the W axis)
  the contracted features, g's plane the kernel: [N, Pd, Ph, B W] * [D', H', B W, Cout]. In 3D
  the W taps are stacked copies of x, so the batch is (kw, Cin); g then needs only its batch
  axis moved, a cheap transpose of W x Cout rows.
  """
  cin, cout = x.shape[-1], g.shape[-1]
  xp = _pad(x, pads)
  if x.ndim == 4:  # 2D: [Cin, Hp, Wp, B] * [H', W', B, Cout]
    lhs = jnp.transpose(xp, (3, 1, 2, 0))
    rhs = jnp.transpose(g, (1, 2, 0, 3))
    return jnp.transpose(_conv2d(lhs, rhs, "VALID", precision), (1, 2, 0, 3))
  b, out_d, out_h, out_w, _ = g.shape
  kw = kernel[2]
  stacked = jnp.stack([xp[:, :, :, t : t + out_w] for t in range(kw)])  # [kw, B, Dp, Hp, W', Cin]
  lhs = jnp.transpose(stacked, (0, 5, 2, 3, 1, 4)).reshape(kw * cin, *xp.shape[1:3], b * out_w)
  rhs = jnp.transpose(g, (1, 2, 0, 3, 4)).reshape(out_d, out_h, b * out_w, cout)
  out = _conv2d(lhs, rhs, "VALID", precision).reshape(kw, cin, *kernel[:2], cout)
  return jnp.transpose(out, (2, 3, 0, 1, 4))  # [kd, kh, kw, Cin, Cout]


def _materialize(y: jax.Array) -> jax.Array:
  """y, computed once into its own buffer.

  XLA:CPU copies elementwise producers into every consumer fusion, however many multiply-adds
  they hold: the first layer's shift-add (27 per value) was computed again inside the pooling
  argmax (426 ms of a 530 ms step) and inside the gradients below. Writing y by two in-place
  updates (all but the last plane, then the last plane) makes it a buffer that consumers read,
  for about the cost of writing it once. `lax.optimization_barrier` does not survive
  XLA:CPU's pipeline.
  """
  last = y.shape[1] - 1
  if last < 1:
    return y
  out = lax.dynamic_update_slice_in_dim(jnp.zeros_like(y), y[:, :last], 0, axis=1)
  return lax.dynamic_update_slice_in_dim(out, y[:, last:], last, axis=1)


def pools_in_conv(x: jax.Array) -> bool:
  """Whether `conv_pool` has an inference path that pools inside a convolution of x [B, *S, C]:
  shift-add (few input channels, 2D or 3D) or 3D depth taps; never inside `reference()`."""
  if _REFERENCE.get():
    return False
  return x.ndim == 5 or (x.shape[-1] < NARROW and x.ndim == 4)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def conv_pool(x: jax.Array, w: jax.Array, bias: jax.Array, pads: Pads, window: int) -> jax.Array:
  """`pooling.relu_max_pool(conv(x, w, pads), window, 'argmax', bias)`, without the
  full-resolution convolution output when not differentiated.

  x [B, *S, Cin], w [*K, Cin, Cout], bias [Cout] -> [B, *S' // window, Cout]. Plain
  evaluation (inference) sums each of the window^ndim parities of the pooled grid from strided
  slices and takes their maximum, in one fusion that writes only the pooled output: for few
  input channels the taps of the input itself (shift-add), in 3D otherwise the depth taps of
  the planes' 2D convolution. The full output (BugCNN3D's first layer: 16 channels at the
  input's resolution) was 2^ndim times the pooled one, written twice (`_materialize`) and read
  again by the pool. Differentiated, it is the unfused composition (same function, gradient).
  """
  cin, kernel = x.shape[-1], w.shape[:-2]
  out = _out_shape(x, kernel, pads)
  if cin < NARROW:
    xp, w32 = _pad(x, pads).astype(jnp.float32), w.astype(jnp.float32)
    terms = lambda parity: (
      _strided(xp, [p + o for p, o in zip(parity, offset, strict=True)], out, window)[
        ..., i : i + 1
      ]
      * w32[(*offset, i)]
      for offset in itertools.product(*(range(k) for k in kernel))
      for i in range(cin)
    )
  else:  # 3D: the planes' 2D convolution to kd blocks of Cout, then depth taps
    b, d, _, _, _ = x.shape
    kd, kh, kw, _, cout = w.shape
    planes_kernel = jnp.moveaxis(w, 0, -2).reshape(kh, kw, cin, kd * cout)
    z = _conv2d(x.reshape(b * d, *x.shape[2:]), planes_kernel, pads[1:], precision=None)
    zp = _pad(z.reshape(b, d, *z.shape[1:]).astype(jnp.float32), (pads[0], (0, 0), (0, 0)))
    terms = lambda parity: (
      _strided(zp, [parity[0] + t, *parity[1:]], out, window)[..., t * cout : (t + 1) * cout]
      for t in range(kd)
    )
  best = None
  for parity in itertools.product(range(window), repeat=len(kernel)):
    total = sum(terms(parity))
    best = total if best is None else jnp.maximum(best, total)
  return jnp.maximum(best + bias.astype(jnp.float32), 0).astype(x.dtype)


def _strided(xp, starts, out, window):
  """xp [B, *S, C] at starts + window * j for j < out // window along each spatial axis."""
  cut = tuple(
    slice(s, s + window * (n // window - 1) + 1, window) for s, n in zip(starts, out, strict=True)
  )
  return xp[(slice(None), *cut)]


def _conv_pool_fwd(x, w, bias, pads, window):
  unfused = lambda x, w, b: relu_max_pool(conv(x, w, pads), window, "argmax", bias=b)
  return jax.vjp(unfused, x, w, bias)


def _conv_pool_bwd(pads, window, vjp, g):
  return vjp(g)


conv_pool.defvjp(_conv_pool_fwd, _conv_pool_bwd)
