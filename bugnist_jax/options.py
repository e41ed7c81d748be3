"""Options as dataclass fields that carry their help and range, validated in one place.

A command's options are a frozen dataclass whose fields are made with `option(...)`; `cli`
turns the fields into absl flags and back, and `validate` checks every value against its
declared type and range before any work starts, so a bad value is one line naming the flag.
"""

import dataclasses
import math
import types
import typing
from typing import Any

from bugnist_jax.errors import UserError


def option(
  default: Any,
  help: str,
  *,
  min: float | None = None,
  above: float | None = None,
  max: float | None = None,
  below: float | None = None,
  choices: tuple | None = None,
) -> Any:
  """A dataclass field with its help text and range: `min` (>=), `above` (>), `max` (<=),
  `below` (<), `choices`."""
  meta = {"help": help, "min": min, "above": above, "max": max, "below": below, "choices": choices}
  if isinstance(default, list | dict | set):
    raise TypeError("option: use a tuple for sequence defaults (dataclass fields are shared)")
  return dataclasses.field(default=default, metadata=meta)


def field_type(field: dataclasses.Field) -> tuple[type, bool, bool]:
  """(element type, optional, sequence) of a field annotated `T`, `T | None` or
  `tuple[T, ...]`."""
  hint = field.type
  args = typing.get_args(hint)
  optional = isinstance(hint, types.UnionType) and type(None) in args
  if optional:
    hint = next(a for a in args if a is not type(None))
  if typing.get_origin(hint) is tuple:
    return typing.get_args(hint)[0], optional, True
  return hint, optional, False


def _check(name: str, value: Any, meta: dict) -> None:
  if meta.get("choices") is not None and value not in meta["choices"]:
    raise UserError(f"{name}: {value!r} is not one of {', '.join(map(str, meta['choices']))}")
  if isinstance(value, bool) or not isinstance(value, int | float):
    return
  if not math.isfinite(value):
    raise UserError(f"{name}: {value} is not a finite number")
  for key, fails, words in _BOUNDS:
    if meta.get(key) is not None and fails(value, meta[key]):
      raise UserError(f"{name}: {value} must be {words} {meta[key]}")


# (metadata key, test that fails a value, words): the range keywords of `option` and `Rule`.
_BOUNDS = (
  ("min", lambda v, b: v < b, ">="),
  ("above", lambda v, b: v <= b, ">"),
  ("max", lambda v, b: v > b, "<="),
  ("below", lambda v, b: v >= b, "<"),
)


def check_value(
  name: str, value: Any, kind: type, meta: dict, *, sequence: bool = False, optional: bool = False
) -> None:
  """Checks `value` (each item of it if `sequence`) against type `kind` and the range in
  `meta` (`min`, `above`, `max`, `below`, `choices`); UserError naming `name` otherwise.
  An int is a valid float; a bool is never a number."""
  if value is None:
    if not optional:
      raise UserError(f"{name}: required")
    return
  for item in value if sequence else (value,):
    if kind is float and isinstance(item, int) and not isinstance(item, bool):
      item = float(item)
    if not isinstance(item, kind) or (kind in (int, float) and isinstance(item, bool)):
      raise UserError(f"{name}: {item!r} is not {getattr(kind, '__name__', kind)}")
    _check(name, item, meta)


def validate(obj: Any, name=lambda field: f"--{field}") -> Any:
  """Checks every field of the dataclass `obj` (recursively) against its type and range;
  UserError naming `name(field)` otherwise. Returns `obj`."""
  for field in dataclasses.fields(obj):
    value = getattr(obj, field.name)
    if dataclasses.is_dataclass(value):
      validate(value, name)
      continue
    kind, optional, sequence = field_type(field)
    check_value(name(field.name), value, kind, field.metadata, sequence=sequence, optional=optional)
  return obj
