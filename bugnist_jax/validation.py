"""Every config field's type and range, checked in one place before any work starts.

`check_config(config, devices)` walks the ConfigDict and raises one `UserError` naming the
first bad field (`config.train.batch_size: 0 must be >= 1`). Training (`train_and_evaluate`)
and the studies call it first; command-line flags are checked by `options.validate` with the
same `options.check_value`. A field's rule (`rule_for`) is, in this order:

- its entry in `RULES` (type, range, choices: the one place ranges are declared);
- for `config.model.<name>`: the type its model's constructor annotates (`model_rule`), so a
  field a new model adds is type-checked with nothing to write here;
- else the type of its value and the range its name implies (`CONVENTIONS`: `num_*` and
  `*_steps` are counts >= 1, `*seed` >= 0, `*learning_rate`/`*sigma` > 0, `*fraction*` in
  [0, 1], ...), so a new study section is checked too. Numbers must be finite.

`tests/test_validation.py` checks that every numeric field of every config file has a range
(from `RULES` or its name): a new field without one fails there, naming it.
"""

import collections.abc
import dataclasses
import functools
import re
import typing
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


_METHODS = _registry("bugnist_jax.attribution.methods", "METHODS")
_CONV_IMPLS = _registry("bugnist_jax.models.layers", "CONV_IMPLS", ("auto",))
_DECODERS = _registry("bugnist_jax.models.saliency_branch", "DECODERS", ("",))
_SALIENCY_LOSSES = _registry("bugnist_jax.training.saliency_losses", "SALIENCY_LOSSES")
_TWO_BRANCH_CONDITIONS = _registry("bugnist_jax.study.two_branch", "CONDITIONS")

RULES: dict[str, Rule] = {
  # data
  "data.source": Rule(str, choices=_registry("bugnist_jax.data.datasets", "SOURCES")),
  "data.root": Rule(str, optional=True),
  "data.shape": _count(sequence=True),  # its length is checked against data.source
  "data.shortcut_strength": _fraction(),
  "data.split_fractions": _fraction(sequence=True, length=3),  # and they sum to 1
  "data.split_csv": Rule(str, optional=True),
  "data.packing_threshold": Rule(int, min=0, max=255),
  "data.packing_min_size": Rule(int, min=0),
  "data.augment": Rule(str, choices=_registry("bugnist_jax.data.pipeline", "AUGMENTATIONS")),
  "data.normalization": Rule(
    str, choices=_registry("bugnist_jax.data.transforms", "NORMALIZATIONS")
  ),
  "data.classes": Rule(str, sequence=True),
  "data.num_workers": Rule(int, min=0),
  "data.prefetch": Rule(int, min=0),
  "data.regime": Rule(str, choices=_registry("bugnist_jax.data.datasets", "REGIMES")),
  "data.noise_copies": _count(),
  "data.noise_std": Rule(float, above=0.0),
  # (low, high) of a uniform, in intensity units of inputs in [0, 1]: beyond +-10 the images
  # are so far out of distribution that the study's sweeps (+-2..4) say nothing more.
  "data.light_mu": Rule(float, sequence=True, length=2, min=-10.0, max=10.0),
  "data.light_sigma": Rule(float, sequence=True, length=2, above=0.0),
  "data.shortcut_patch": _fraction(),  # synthetic2d: probability the patch tells the class
  "data.annotated_fraction": _fraction(),
  "data.annotations.boxes_csv": Rule(str, optional=True),
  "data.annotations.mask_root": Rule(str, optional=True),
  # model: the type comes from the model's constructor (`model_rule`); ranges and choices here
  "model.name": Rule(str, choices=_registry("bugnist_jax.models", "MODELS")),
  "model.channels": _count(sequence=True),
  "model.dense": _count(),
  "model.hidden": _count(),
  "model.dropout": Rule(float, min=0.0, below=1.0),
  "model.pool_impl": Rule(str, choices=_registry("bugnist_jax.models.pooling", "POOL_IMPLS")),
  "model.conv_impl": Rule(str, choices=_CONV_IMPLS),
  "model.arch": Rule(int, choices=_registry("bugnist_jax.models.cnn2d", "ARCHITECTURES")),
  "model.pool_window": _count(),
  "model.pool_stride": _count(),
  "model.width": Rule(float, above=0.0),
  "model.blocks": _count(sequence=True),  # () = the variant's own block counts
  "model.frontend": Rule(str, choices=("", "precortical")),
  "model.frontend_variant": Rule(
    str, choices=_registry("bugnist_jax.models.precortical", "VARIANTS")
  ),
  "model.frontend_kernel": _count(),
  "model.frontend_dropout": Rule(float, min=0.0, below=1.0),
  "model.frontend_semisaturation": Rule(float, above=0.0),
  # saliency_branch (bugnist_jax.models.saliency_branch)
  "saliency_branch.decoder": Rule(str, choices=_DECODERS),
  "saliency_branch.sources": Rule(str, sequence=True),  # checked against the model's stages
  "saliency_branch.width": _count(),
  # train
  "train.batch_size": _count(),  # and divisible by the device count
  "train.num_epochs": _count(),
  "train.learning_rate": Rule(float, above=0.0),
  "train.optimizer": Rule(str, choices=("adam", "adamw", "sgd")),
  "train.schedule": Rule(str, choices=("cosine", "constant")),
  "train.warmup_epochs": Rule(float, min=0.0),
  "train.momentum": Rule(float, min=0.0, below=1.0),
  "train.grad_clip": Rule(float, min=0.0),
  "train.compute_dtype": Rule(str, choices=_registry("bugnist_jax.models", "DTYPES")),
  "train.checkpoint_every_epochs": Rule(float, above=0.0),
  "train.keep_checkpoints": _count(),
  "train.extra_loss": Rule(
    str, choices=_registry("bugnist_jax.training.losses", "EXTRA_LOSSES", ("",))
  ),
  "train.saliency_losses": Rule(str, sequence=True, choices=_SALIENCY_LOSSES),
  **{f"train.saliency_weights.{term}": Rule(float, min=0.0) for term in ("mask", "box", "gain")},
  "train.box_target": Rule(
    str, choices=_registry("bugnist_jax.training.saliency_losses", "BOX_TARGETS")
  ),
  "train.freeze": Rule(str, sequence=True),
  "train.divergence_factor": Rule(float, above=1.0),
  "train.tensorboard_images": Rule(int, min=0),
  "train.adversarial.norm": Rule(
    str, choices=_registry("bugnist_jax.training.adversarial", "NORMS", ("",))
  ),
  "train.adversarial.epsilon": Rule(float, above=0.0),
  "train.adversarial.steps": _count(),
  "train.adversarial.step_size": Rule(float, min=0.0),  # 0: 2.5 * epsilon / steps
  "eval.batch_size": _count(),  # and divisible by the device count
  # study (bugnist_jax.study.shortcut)
  "study.conditions": Rule(
    str, sequence=True, choices=_registry("bugnist_jax.study.shortcut", "CONDITIONS")
  ),
  "study.methods": Rule(str, sequence=True, choices=_METHODS),
  "study.cam_layer": Rule(str, optional=True),
  "study.num_faithfulness": Rule(int, min=0),  # 0: skip
  "study.batch_size": _count(),
  # sanity (bugnist_jax.study.sanity)
  "sanity.methods": Rule(str, sequence=True, choices=_METHODS),
  "sanity.cam_layer": Rule(str, optional=True),
  "sanity.random_label_epochs": Rule(int, min=0),  # 0: skip that test
  # two_branch (bugnist_jax.study.two_branch)
  "two_branch.parts": Rule(
    str, sequence=True, choices=_registry("bugnist_jax.study.two_branch", "PARTS")
  ),
  "two_branch.sizes": _count(sequence=True),  # training items per class
  "two_branch.eval_per_class": _count(),
  "two_branch.conditions": Rule(str, sequence=True, choices=_TWO_BRANCH_CONDITIONS),
  "two_branch.decoder": Rule(str, choices=_DECODERS),
  "two_branch.right_reasons_weight": Rule(float, min=0.0),
  "two_branch.methods": Rule(str, sequence=True, choices=_METHODS),
  "two_branch.cam_layer": Rule(str, optional=True),  # '' = the model's cam_layer
  "two_branch.iou_threshold": _fraction(),
  "two_branch.source_classes": Rule(str, sequence=True),
  "two_branch.source_per_class": _count(),
  "two_branch.target_classes": Rule(str, sequence=True),
  "two_branch.target_per_class": _count(),
  "two_branch.transfer_conditions": Rule(
    str, sequence=True, choices=_registry("bugnist_jax.study.two_branch", "TRANSFER")
  ),
  "two_branch.shortcut_patch": _fraction(),
  "two_branch.shortcut_per_class": _count(),
  "two_branch.shortcut_conditions": Rule(str, sequence=True, choices=_TWO_BRANCH_CONDITIONS),
  "two_branch.num_explain": _count(),
  "two_branch.num_figure": Rule(int, min=0),
  "two_branch.smoothgrad_samples": _count(),
  "two_branch.batch_size": _count(),
  "two_branch.seed": Rule(int, min=0),
}

# The range a field's last name implies when `RULES` has no entry for it: (pattern, range).
# The first match wins; a field matching none is checked for its type (and finiteness) only.
CONVENTIONS: tuple[tuple[str, dict], ...] = (
  (r"(.*_)?seed", {"min": 0}),  # numpy seeds are non-negative
  (r"num_.*|.*_(steps|samples|epochs|examples|size|window|stride)|window|stride", {"min": 1}),
  (r"(.*_)?(learning_rate|lr|sigma)", {"above": 0.0}),
  (r".*(fraction|strength|probability).*", {"min": 0.0, "max": 1.0}),
  (r".*_(weight|decay)", {"min": 0.0}),
)


def _convention(field: str) -> dict:
  name = field.rsplit(".", 1)[-1]
  return next((bounds for pattern, bounds in CONVENTIONS if re.fullmatch(pattern, name)), {})


def _kind_of(value) -> tuple[type, bool]:
  """(element type, sequence) of a config value (the type of its first item for a tuple)."""
  if isinstance(value, tuple | list):
    first = next(iter(value), "")
    return (float if isinstance(first, float) else type(first)), True
  return type(value), False


def model_rule(model: str, field: str) -> Rule | None:
  """The rule of `config.model.<field>` for the registered model `model`: the type its
  constructor annotates (`Sequence[int]`, `int`, ...; the default's type where it has no
  annotation), or None if the model has no such field (or there is no such model)."""
  from bugnist_jax import models

  spec = models.MODELS.get(model)
  if spec is None or field not in spec.defaults():
    return None
  hint = typing.get_type_hints(spec.cls.__init__).get(field)
  if hint is None:
    kind, sequence = _kind_of(spec.defaults()[field])
  elif typing.get_origin(hint) in (tuple, list, collections.abc.Sequence):
    kind, sequence = typing.get_args(hint)[0], True
  else:
    kind, sequence = typing.get_args(hint)[0] if typing.get_args(hint) else hint, False
  return Rule(kind, sequence=sequence, optional=spec.defaults()[field] is None)


@functools.cache
def _base_kinds() -> dict[str, tuple[type, bool]]:
  """{field: (element type, sequence)} of `config_defaults.base()`'s fields (model aside)."""
  from bugnist_jax import config_defaults

  fields = leaves(config_defaults.base())
  return {f: _kind_of(v) for f, v in fields.items() if not f.startswith("model.") and v is not None}


def _nested_rule(field: str) -> Rule | None:
  """The rule of a field of a section that holds a training config of its own (a study's
  `volumes.data.num_workers`, `memorisation.families.f.train.batch_size`): that of its longest
  dotted suffix in `RULES` (at least `section.name`), or None."""
  parts = field.split(".")
  for start in range(1, len(parts) - 1):
    rule = RULES.get(".".join(parts[start:]))
    if rule is not None:
      return rule
  return None


def rule_for(field: str, value, config: ml_collections.ConfigDict) -> Rule:
  """The rule of `config.<field>` (see the module docstring): its type from the model's
  constructor, else `RULES`, else `config_defaults.base()` (else its value); its range and
  choices from `RULES`, else the range its name implies."""
  model = config.get("model", {}).get("name") if field.startswith("model.") else None
  typed = model_rule(model, field.split(".", 1)[1]) if isinstance(model, str) else None
  declared = RULES.get(field) or _nested_rule(field)
  if declared is not None:
    return declared if typed is None else dataclasses.replace(declared, kind=typed.kind)
  if typed is None:
    kind, sequence = _base_kinds().get(field) or _kind_of(value)
    typed = Rule(kind, sequence=sequence, optional=value is None)
  bounds = _convention(field) if typed.kind in (int, float) else {}
  return dataclasses.replace(typed, **bounds)


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


def check_model_fits(config: ml_collections.ConfigDict) -> None:
  """Builds `config.model` abstractly (no arrays) for `config.data.shape`: a shape too small
  for its poolings, or a model field its constructor refuses, is a UserError before the data
  is read. The channels are the source's (1 for volumes, 3 for images)."""
  from flax import nnx

  from bugnist_jax.models import build_model

  channels = 1 if config.data.source in SOURCES_3D else 3
  nnx.eval_shape(lambda: build_model(config, (*config.data.shape, channels), 2))


def check_config(config: ml_collections.ConfigDict, devices: int = 1) -> None:
  """Checks every field of `config` against its rule (`rule_for`), then the rules between
  fields (batch sizes divisible by `devices`, fractions summing to 1, the shape's length)."""
  values = leaves(config)
  for field, value in values.items():
    check_field(field, value, rule_for(field, value, config))
  _cross_checks(values, devices)
