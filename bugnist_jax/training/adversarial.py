"""PGD adversarial training (Madry et al. 2018), an option of every run: `config.train.adversarial`.

Each train step replaces its batch by PGD examples: `steps` steps of size `step_size` (signed
gradient for 'linf', normalised gradient for 'l2') that raise the cross-entropy, each followed
by the projection onto the `epsilon` ball around the input and onto the intensity range [0, 1];
a random start inside the ball (a fresh key per step). Sizes are intensity units, so they mean
the same for any `Normalization`. The attack runs the model in inference mode (no dropout, no
batch-statistics update); the parameters then train on the examples in training mode.
"""

import dataclasses

import jax
import jax.numpy as jnp
import optax
from jax import lax

from bugnist_jax.errors import UserError
from bugnist_jax.models.adapters import as_function

NORMS = ("linf", "l2")


def _norm(v: jax.Array) -> jax.Array:
  """Per-sample L2 norm of v [B, ...], shaped [B, 1, ..., 1]."""
  return jnp.sqrt(jnp.sum(jnp.square(v), axis=tuple(range(1, v.ndim)), keepdims=True))


def project(delta: jax.Array, norm: str, epsilon: float) -> jax.Array:
  """delta [B, ...] moved into the per-sample `norm` ball of radius `epsilon`."""
  if norm == "linf":
    return jnp.clip(delta, -epsilon, epsilon)
  return delta * jnp.minimum(1.0, epsilon / jnp.maximum(_norm(delta), 1e-12))


def pgd(
  f,
  x: jax.Array,
  labels: jax.Array,
  *,
  norm: str,
  epsilon: float,
  steps: int,
  step_size: float,
  key: jax.Array | None = None,
  bounds: tuple[float, float] = (0.0, 1.0),
) -> jax.Array:
  """PGD examples for `f(x) -> logits`: x [B, *S, C], labels [B] -> x_adv [B, *S, C] with
  ||x_adv - x|| <= epsilon per sample and x_adv within `bounds`; a random start when `key`."""
  if norm not in NORMS:
    raise ValueError(f"norm: unknown {norm!r}; valid: {', '.join(NORMS)}")
  lo, hi = bounds
  delta = jnp.zeros_like(x)
  if key is not None:
    if norm == "linf":
      delta = jax.random.uniform(key, x.shape, x.dtype, -epsilon, epsilon)
    else:  # a random direction, a random radius
      direction, radius = jax.random.split(key)
      delta = jax.random.normal(direction, x.shape, x.dtype)
      delta = delta / jnp.maximum(_norm(delta), 1e-12) * epsilon
      delta = delta * jax.random.uniform(radius, (x.shape[0],) + (1,) * (x.ndim - 1))
  loss = lambda d: jnp.sum(optax.softmax_cross_entropy_with_integer_labels(f(x + d), labels))

  def step(_, d):
    g = jax.grad(loss)(d)
    ascent = jnp.sign(g) if norm == "linf" else g / jnp.maximum(_norm(g), 1e-12)
    d = project(d + step_size * ascent, norm, epsilon)
    return jnp.clip(x + d, lo, hi) - x

  delta = jnp.clip(x + delta, lo, hi) - x
  return lax.stop_gradient(x + lax.fori_loop(0, steps, step, delta))


@dataclasses.dataclass(frozen=True)
class Adversarial:
  """The train step's hook: `(model, inputs, labels, normalization, step) -> PGD inputs`."""

  norm: str
  epsilon: float
  steps: int
  step_size: float
  random_start: bool = True
  seed: int = 0

  def __call__(self, model, inputs: jax.Array, labels: jax.Array, normalization, step):
    """PGD examples of model inputs [B, *S, C] for `model` (attacked in inference mode);
    `step` (the optimizer's step count) seeds the random start."""
    f = as_function(model)
    on_intensities = lambda z: f(normalization.from_intensities(z))
    key = jax.random.fold_in(jax.random.key(self.seed), step) if self.random_start else None
    z = pgd(
      on_intensities,
      normalization.invert(inputs),
      labels,
      norm=self.norm,
      epsilon=self.epsilon,
      steps=self.steps,
      step_size=self.step_size,
      key=key,
    )
    return normalization.from_intensities(z)


def from_config(cfg, seed: int = 0) -> Adversarial | None:
  """The hook of config.train `cfg` (its `adversarial` section); None when norm is ''.
  A bad value is a UserError naming the field."""
  a = cfg.get("adversarial")
  if a is None or not a.norm:
    return None
  field = "config.train.adversarial"
  if a.norm not in NORMS:
    raise UserError(f"{field}.norm: unknown {a.norm!r}; valid: '', {', '.join(NORMS)}")
  if not a.epsilon > 0:
    raise UserError(f"{field}.epsilon: {a.epsilon} must be > 0")
  if int(a.steps) < 1:
    raise UserError(f"{field}.steps: {a.steps} must be >= 1")
  if a.step_size < 0:
    raise UserError(f"{field}.step_size: {a.step_size} must be >= 0 (0: 2.5 * epsilon / steps)")
  step_size = float(a.step_size) or 2.5 * float(a.epsilon) / int(a.steps)
  return Adversarial(a.norm, float(a.epsilon), int(a.steps), step_size, bool(a.random_start), seed)


__all__ = ["NORMS", "Adversarial", "from_config", "pgd", "project"]
