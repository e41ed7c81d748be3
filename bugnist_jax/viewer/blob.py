"""The viewer's wire format: a few named numpy arrays and a small JSON header in one buffer.

Layout (all little-endian), decoded by `static/blob.js`:

    bytes 0..3     b"BVW1"
    bytes 4..7     uint32 n, the header's length
    bytes 8..8+n   UTF-8 JSON {"meta": {...}, "arrays": {name: {"dtype", "shape", "offset"}}}
    then zero padding to a multiple of 8, then the arrays' bytes, C order, each starting at
    `offset` (a multiple of 8, counted from the end of the padding) so the browser can view
    them as typed arrays without copying.

`meta` holds strings, ints and a few scalars (a layer's scale); arrays (activations, maps,
histograms, probabilities, thumbnails) always go in the binary part, never as JSON lists.
"""

import json
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np

MAGIC = b"BVW1"
DTYPES = ("int8", "uint8", "int32", "float32")


def _pad(n: int) -> int:
  return -n % 8


def encode(meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None) -> bytes:
  """One buffer with `meta` (JSON-able) and `arrays` (each of a dtype in DTYPES)."""
  specs, chunks, offset = {}, [], 0
  for name, value in (arrays or {}).items():
    a = np.ascontiguousarray(value)
    if a.dtype.name not in DTYPES:
      raise ValueError(f"arrays[{name!r}]: dtype {a.dtype}, expected one of {DTYPES}")
    a = a.astype(a.dtype.newbyteorder("<"), copy=False)
    specs[name] = {"dtype": a.dtype.name, "shape": list(a.shape), "offset": offset}
    data = a.tobytes()
    chunks += [data, b"\0" * _pad(len(data))]
    offset += len(data) + _pad(len(data))
  header = json.dumps({"meta": dict(meta), "arrays": specs}, separators=(",", ":")).encode()
  prefix = MAGIC + struct.pack("<I", len(header)) + header
  return b"".join([prefix, b"\0" * _pad(len(prefix)), *chunks])


def decode(buffer: bytes) -> tuple[dict, dict[str, np.ndarray]]:
  """(meta, arrays) of a buffer written by `encode` (the tests read what the server sends)."""
  if buffer[:4] != MAGIC:
    raise ValueError("not a viewer blob (bad magic)")
  (n,) = struct.unpack("<I", buffer[4:8])
  header = json.loads(buffer[8 : 8 + n])
  start = 8 + n + _pad(8 + n)
  arrays = {}
  for name, spec in header["arrays"].items():
    dtype = np.dtype(spec["dtype"]).newbyteorder("<")
    count = int(np.prod(spec["shape"], dtype=np.int64))
    arrays[name] = np.frombuffer(buffer, dtype, count, offset=start + spec["offset"]).reshape(
      spec["shape"]
    )
  return header["meta"], arrays


def quantize(values: np.ndarray) -> tuple[np.ndarray, float]:
  """Signed values -> (int8 codes, scale) with value ~ code / 127 * scale and 0 -> 0 exactly,
  so one scale serves the whole array (the viewer's one scale per layer)."""
  values = np.asarray(values, np.float32)
  scale = float(np.max(np.abs(values))) if values.size else 0.0
  scale = scale if np.isfinite(scale) and scale > 0 else 1.0
  return np.round(values * (127.0 / scale)).astype(np.int8), scale


def histogram(values: np.ndarray, bins: int = 16) -> dict[str, np.ndarray]:
  """{'counts': int32 [bins], 'edges': float32 [bins + 1]} over the values' range."""
  values = np.asarray(values, np.float32).reshape(-1)
  lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
  counts, edges = np.histogram(values, bins=bins, range=(lo, hi if hi > lo else lo + 1e-6))
  return {"counts": counts.astype(np.int32), "edges": edges.astype(np.float32)}
