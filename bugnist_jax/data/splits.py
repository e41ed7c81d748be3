"""Seeded stratified train/validation/test splits and their CSV files (`item,label,split`).

BugNIST has no official split of the single bugs, so runs make their own and save it next to the
checkpoint: the CSV names each item (relative file path, or the synthetic index) with its split.
"""

import csv
import io
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from bugnist_jax.errors import UserError

SPLIT_NAMES: tuple[str, ...] = ("train", "validation", "test")
_COLUMNS = ("item", "label", "split")


def stratified_split(
  labels: np.ndarray, fractions=(0.7, 0.15, 0.15), seed: int = 0
) -> dict[str, np.ndarray]:
  """Splits indices of `labels` [N] per class into train/validation/test.

  Each class is shuffled with its own generator (`default_rng([seed, class])`), so a class's
  split does not depend on the other classes. A class with at least 3 members gets at least one
  member in every split with a positive fraction; the train split takes the rounding rest.
  Returns {'train', 'validation', 'test'} -> sorted int64 index arrays [n_split].
  """
  fractions = tuple(float(f) for f in fractions)
  if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
    raise UserError(f"fractions: {fractions} must be three non-negative numbers summing to 1")
  labels = np.asarray(labels)
  if labels.ndim != 1:
    raise UserError(f"labels: expected a 1D array, got shape {labels.shape}")
  parts = {name: [] for name in SPLIT_NAMES}
  for c in np.unique(labels):
    idx = np.flatnonzero(labels == c)
    idx = idx[np.random.default_rng([seed, int(c)]).permutation(len(idx))]
    n = len(idx)
    n_val, n_test = (int(round(n * f)) for f in fractions[1:])
    if n >= 3:  # every split with a positive fraction gets a member
      n_val = max(n_val, int(fractions[1] > 0))
      n_test = max(n_test, int(fractions[2] > 0))
    n_train = n - n_val - n_test
    if n_train < 1 and fractions[0] > 0:  # train first: small classes still train
      n_train = min(1, n)
      n_test = min(n_test, n - n_train)
      n_val = n - n_train - n_test
    parts["train"].append(idx[:n_train])
    parts["validation"].append(idx[n_train : n_train + n_val])
    parts["test"].append(idx[n_train + n_val :])
  return {
    k: np.sort(np.concatenate(v)).astype(np.int64) if v else np.zeros(0, np.int64)
    for k, v in parts.items()
  }


def write_split_csv(
  path: str | os.PathLike, items: list[str], labels, split: dict[str, np.ndarray]
) -> None:
  """Writes one row `item,label,split` per item. Every item must be in exactly one split."""
  which = [None] * len(items)
  for name, idx in split.items():
    if name not in SPLIT_NAMES:
      raise ValueError(f"unknown split name {name!r}")
    for i in np.asarray(idx).tolist():
      if which[i] is not None:
        raise ValueError(f"item {i} is in splits {which[i]!r} and {name!r}")
      which[i] = name
  if None in which:
    raise ValueError(f"item {which.index(None)} is in no split")
  out = io.StringIO(newline="")
  w = csv.writer(out)
  w.writerow(_COLUMNS)
  for item, label, name in zip(items, np.asarray(labels).tolist(), which, strict=True):
    w.writerow([item, int(label), name])
  write_atomically(Path(path), out.getvalue())


def write_atomically(path: Path, text: str) -> None:
  """Writes `text` to `path` through a temporary file and a rename: a reader (another process
  of a multi-host run, a resumed run after a crash) sees the old file or the whole new one."""
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
  with open(tmp, "w", newline="") as f:
    f.write(text)
  os.replace(tmp, path)


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
  """(line number, fields) of each non-blank row of the CSV file `path`."""
  try:
    text = path.read_text(encoding="utf-8-sig")
  except UnicodeDecodeError as e:
    raise UserError(f"{path}: not a UTF-8 text file (bad byte at offset {e.start})") from None
  reader = csv.reader(io.StringIO(text, newline=""))
  try:
    for row in reader:
      if row:
        yield reader.line_num, row
  except csv.Error as e:
    raise UserError(f"{path}: line {reader.line_num + 1}: not CSV ({e})") from None


def read_split_csv(path: str | os.PathLike) -> tuple[list[str], np.ndarray, dict[str, np.ndarray]]:
  """Reads a split CSV back: (items [N], labels int32 [N], {split name: int64 indices}).

  Bad files (not UTF-8 text or not CSV, missing columns, rows of the wrong length, empty items,
  unknown split names, bad labels, duplicate items) raise a UserError naming the file and line.
  """
  path = Path(path)
  if not path.is_file():
    raise UserError(f"{path}: split file does not exist")
  rows = _rows(path)
  _, header = next(rows, (1, []))
  missing = [c for c in _COLUMNS if c not in header]
  if missing:
    raise UserError(f"{path}: missing column(s) {', '.join(missing)} (need {','.join(_COLUMNS)})")
  column = [header.index(c) for c in _COLUMNS]
  items, labels, names, seen = [], [], [], {}
  for line, row in rows:
    if len(row) != len(header):
      raise UserError(f"{path}: line {line}: {len(row)} fields, the header has {len(header)}")
    item, label, name = (row[c] for c in column)
    if not item:
      raise UserError(f"{path}: line {line}: empty item")
    if name not in SPLIT_NAMES:
      raise UserError(
        f"{path}: line {line}: unknown split {name!r} (expected {', '.join(SPLIT_NAMES)})"
      )
    if item in seen:
      raise UserError(f"{path}: line {line}: duplicate item {item!r} (first on line {seen[item]})")
    if not re.fullmatch(r"[0-9]{1,9}", label):  # int32, ASCII digits only
      raise UserError(f"{path}: line {line}: label {label!r} is not an integer in [0, 1e9)")
    seen[item] = line
    items.append(item)
    labels.append(int(label))
    names.append(name)
  names = np.array(names, dtype=object)
  split = {n: np.flatnonzero(names == n).astype(np.int64) for n in SPLIT_NAMES}
  return items, np.array(labels, np.int32), split
