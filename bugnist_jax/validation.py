"""Every config field's type and range, checked in one place before any work starts.

`RULES` maps a dotted config field to its `Rule`; `check_config(config, devices)` walks the
ConfigDict and raises one `UserError` naming the first bad field (`config.train.batch_size: 0
must be >= 1`). Training (`train_and_evaluate`) and the studies call it first; command-line
flags are checked by `options.validate` with the same `options.check_value`.

Fields without a rule pass unchecked (a config file's own sections); `tests/test_validation.py`
checks that every field of every config file has one, so a new field needs a rule here.
"""

import dataclasses
from collections.abc import Callable

import ml_collections

from bugnist_jax.errors import UserError
from bugnist_jax.options import check_value

SOURCES_3D = ("synthetic3d", "bugnist3d")  # data.shape is (Z, Y, X); the others (H, W)


@dataclasses.dataclass(frozen=True)
class Rule:
  """A field's type (`kind`: int, float, str, bool; `sequence` for tuples), range (`min` >=,
  `above` >, `max` <=, `below` <) and `choices` (a tuple, or a function giving one, for
  registries that live above this module)."""

  kind: type
  min: float | None = None
  above: float | None = None
  max: float | None = None
  below: float | None = None
  choices: tuple | Callable[[], tuple] | None = None
  sequence: bool = False
  optional: bool = False
  length: int | None = None

  def meta(self) -> dict:
    choices = self.choices() if callable(self.choices) else self.choices
    return {
      "min": self.min,
      "above": self.above,
      "max": self.max,
      "below": self.below,
      "choices": choices,
    }


def _count(**kw) -> Rule:  # a count of things: an int >= 1
  return Rule(int, min=1, **kw)


def _fraction(**kw) -> Rule:  # a share in [0, 1]
  return Rule(float, min=0.0, max=1.0, **kw)


def _registry(module: str, name: str, extra: tuple = ()) -> Callable[[], tuple]:
  """The keys of a registry, imported when a config is checked (some live above this module)."""

  def keys() -> tuple:
    import importlib

    return (*extra, *getattr(importlib.import_module(module), name))

  return keys


_SEED = Rule(int, min=0)  # numpy seeds are non-negative
_METHODS = _registry("bugnist_jax.attribution.methods", "METHODS")
_CONV_IMPLS = _registry("bugnist_jax.models.layers", "CONV_IMPLS", ("auto",))

RULES: dict[str, Rule] = {
  "seed": _SEED,
  # data
  "data.source": Rule(str, choices=_registry("bugnist_jax.data.datasets", "SOURCES")),
  "data.root": Rule(str, optional=True),
  "data.shape": _count(sequence=True),  # its length is checked against data.source
  "data.num_examples": _count(),
  "data.shortcut_strength": _fraction(),
  "data.seed": _SEED,
  "data.split_fractions": _fraction(sequence=True, length=3),  # and they sum to 1
  "data.split_csv": Rule(str, optional=True),
  "data.remove_packing": Rule(bool),
  "data.packing_threshold": Rule(int, min=0, max=255),
  "data.packing_min_size": Rule(int, min=0),
  "data.mask_from_threshold": Rule(bool),
  "data.shuffle_labels": Rule(bool),
  "data.augment": Rule(str, choices=_registry("bugnist_jax.data.pipeline", "AUGMENTATIONS")),
  "data.normalization": Rule(
    str, choices=_registry("bugnist_jax.data.transforms", "NORMALIZATIONS")
  ),
  "data.classes": Rule(str, sequence=True),
  "data.num_workers": Rule(int, min=0),
  "data.prefetch": Rule(int, min=0),
  "data.normalization_examples": _count(),
  "data.skip_bad_files": Rule(bool),
  # model (the union of the registered models' fields; each model has only its own)
  "model.name": Rule(str, choices=_registry("bugnist_jax.models", "MODELS")),
  "model.channels": _count(sequence=True),
  "model.dense": _count(),
  "model.hidden": _count(),
  "model.batch_norm": Rule(bool),
  "model.dropout": Rule(float, min=0.0, below=1.0),
  "model.pool_impl": Rule(str, choices=_registry("bugnist_jax.models.pooling", "POOL_IMPLS")),
  "model.conv_impl": Rule(str, choices=_CONV_IMPLS),
  "model.arch": Rule(int, choices=_registry("bugnist_jax.models.cnn2d", "ARCHITECTURES")),
  "model.pool_window": _count(),
  "model.pool_stride": _count(),
  "model.width": Rule(float, above=0.0),
  "model.weights": Rule(str),
  "model.replace_head": Rule(bool),
  # train
  "train.batch_size": _count(),  # and divisible by the device count
  "train.num_epochs": _count(),
  "train.optimizer": Rule(str, choices=("adam", "adamw", "sgd")),
  "train.learning_rate": Rule(float, above=0.0),
  "train.schedule": Rule(str, choices=("cosine", "constant")),
  "train.warmup_epochs": Rule(float, min=0.0),
  "train.weight_decay": Rule(float, min=0.0),
  "train.momentum": Rule(float, min=0.0, below=1.0),
  "train.grad_clip": Rule(float, min=0.0),
  "train.compute_dtype": Rule(str, choices=_registry("bugnist_jax.models", "DTYPES")),
  "train.log_every_steps": _count(),
  "train.checkpoint_every_epochs": Rule(float, above=0.0),
  "train.keep_checkpoints": _count(),
  "train.extra_loss": Rule(
    str, choices=_registry("bugnist_jax.training.losses", "EXTRA_LOSSES", ("",))
  ),
  "train.extra_loss_weight": Rule(float, min=0.0),
  "train.freeze": Rule(str, sequence=True),
  "train.divergence_factor": Rule(float, above=1.0),
  "train.tensorboard_images": Rule(int, min=0),
  "eval.batch_size": _count(),  # and divisible by the device count
  # study (bugnist_jax.study.shortcut)
  "study.conditions": Rule(
    str, sequence=True, choices=_registry("bugnist_jax.study.shortcut", "CONDITIONS")
  ),
  "study.right_reasons_weight": Rule(float, min=0.0),
  "study.methods": Rule(str, sequence=True, choices=_METHODS),
  "study.cam_layer": Rule(str, optional=True),
  "study.num_explain": _count(),
  "study.num_figure": _count(),
  "study.num_faithfulness": Rule(int, min=0),
  "study.faithfulness_steps": _count(),
  "study.smoothgrad_samples": _count(),
  "study.ig_steps": _count(),
  "study.batch_size": _count(),
  "study.seed": _SEED,
  # sanity (bugnist_jax.study.sanity)
  "sanity.methods": Rule(str, sequence=True, choices=_METHODS),
  "sanity.cam_layer": Rule(str, optional=True),
  "sanity.num_examples": _count(),
  "sanity.random_label_epochs": Rule(int, min=0),
  "sanity.smoothgrad_samples": _count(),
  "sanity.ig_steps": _count(),
  "sanity.seed": _SEED,
}


def leaves(config: ml_collections.ConfigDict, prefix: str = "") -> dict[str, object]:
  """{dotted field: value} of every leaf of `config`."""
  out = {}
  for key, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      out |= leaves(value, f"{prefix}{key}.")
    else:
      out[f"{prefix}{key}"] = value
  return out


def check_field(field: str, value, rule: Rule) -> None:
  """`value` of config field `field` against `rule`; UserError `config.<field>: ...`."""
  name = f"config.{field}"
  if rule.sequence:
    if not isinstance(value, tuple | list):
      raise UserError(f"{name}: {value!r} is not a tuple")
    if rule.length is not None and len(value) != rule.length:
      raise UserError(f"{name}: {tuple(value)} must have {rule.length} values")
  check_value(name, value, rule.kind, rule.meta(), sequence=rule.sequence, optional=rule.optional)


def _cross_checks(c: dict, devices: int) -> None:
  """Rules between fields."""
  for field in ("train.batch_size", "eval.batch_size"):
    if field in c and c[field] % devices:
      raise UserError(f"config.{field}: {c[field]} is not divisible by the {devices} devices")
  if "data.split_fractions" in c:
    fractions = tuple(c["data.split_fractions"])
    if abs(sum(fractions) - 1) > 1e-6 or min(fractions) <= 0:
      raise UserError(
        f"config.data.split_fractions: {fractions} must be three fractions > 0 that sum to 1"
      )
  if "data.shape" in c and "data.source" in c:
    dims = 3 if c["data.source"] in SOURCES_3D else 2
    if len(c["data.shape"]) != dims:
      axes = "(Z, Y, X)" if dims == 3 else "(H, W)"
      raise UserError(
        f"config.data.shape: {tuple(c['data.shape'])} must be {axes} for source "
        f"{c['data.source']!r}"
      )


def check_config(config: ml_collections.ConfigDict, devices: int = 1) -> None:
  """Checks every field of `config` that has a rule, then the rules between fields
  (batch sizes divisible by `devices`, fractions summing to 1, the shape's length)."""
  values = leaves(config)
  for field, value in values.items():
    if field in RULES:
      check_field(field, value, RULES[field])
  _cross_checks(values, devices)
