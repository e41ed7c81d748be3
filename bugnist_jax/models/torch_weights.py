"""The one loader of PyTorch weights for every family: a state_dict from a LOCAL file into a model.

Files: a `torch.save`d state_dict (`.pth`/`.pt`, read with `torch.load(weights_only=True)`,
which refuses pickled code; torch is imported only for these) or a `.safetensors` file. Nothing
is downloaded at run time.

A family describes its layout as a key map, `{torch key: (our parameter, kind)}`, built from its
modules with `conv_keys`, `norm_keys` and `linear_keys`; kinds convert torch's layout to ours:
- 'conv': [O, I, *K] -> [*K, I, O];
- 'dense': a Linear's [out, in] -> [in, out];
- 'copy': as it is (biases, batch-norm scale/shift/statistics);
- 'skip': a key the file has and we ignore (a head being replaced, num_batches_tracked);
- a `Conversion`, for anything else (VGG's fc1 reorders its rows).

`load(model, path, keys, what)` reads the file, checks every key (missing, unexpected and
mis-shaped keys are named in one UserError line) and only then writes the parameters.

Inflation (`inflate=True`): a 2D file into a 3D model, as I3D (Carreira & Zisserman 2017) starts
a 3D network from ImageNet: each 2D kernel [O, I, kh, kw] is repeated kd times along D and
divided by kd, so a volume constant along D gives the 2D network's activations. Also, a first
convolution trained on RGB loaded into a 1-channel model is summed over its 3 input channels
(a grey image replicated to RGB gives the same response).
"""

import dataclasses
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from bugnist_jax.errors import UserError

KINDS = ("conv", "dense", "copy", "skip")


@dataclasses.dataclass(frozen=True)
class Conversion:
  """A conversion the kinds above do not cover: `to_ours(value, our_shape)` and the torch shape
  that converts to `our_shape` (`torch_shape(our_shape)`)."""

  to_ours: Callable[[np.ndarray, tuple[int, ...]], np.ndarray]
  torch_shape: Callable[[tuple[int, ...]], tuple[int, ...]]


Kind = str | Conversion
KeyMap = dict[str, tuple[nnx.Variable | None, Kind]]


def conv_keys(prefix: str, conv, kind: Kind = "conv") -> KeyMap:
  """`{prefix}.weight` (and `.bias`) of a `layers.Conv`; for a `layers.Conv2Plus1D` torchvision's
  Sequential layout: `{prefix}.0` the (1, k, k) conv, `.1` its BatchNorm, `.3` the (k, 1, 1)."""
  if hasattr(conv, "temporal"):
    return (
      conv_keys(f"{prefix}.0", conv.spatial, kind)
      | norm_keys(f"{prefix}.1", conv.norm)
      | conv_keys(f"{prefix}.3", conv.temporal, kind)
    )
  keys = {f"{prefix}.weight": (conv.kernel, kind)}
  if conv.bias is not None:
    keys[f"{prefix}.bias"] = (conv.bias, "skip" if kind == "skip" else "copy")
  return keys


def norm_keys(prefix: str, norm: nnx.BatchNorm) -> KeyMap:
  """torch BatchNorm: weight, bias, running_mean, running_var (num_batches_tracked ignored)."""
  return {
    f"{prefix}.weight": (norm.scale, "copy"),
    f"{prefix}.bias": (norm.bias, "copy"),
    f"{prefix}.running_mean": (norm.mean, "copy"),
    f"{prefix}.running_var": (norm.var, "copy"),
    f"{prefix}.num_batches_tracked": (None, "skip"),
  }


def linear_keys(prefix: str, linear: nnx.Linear, load: bool = True) -> KeyMap:
  """torch Linear weight [out, in] and bias; `load=False` skips them (a replaced head)."""
  return {
    f"{prefix}.weight": (linear.kernel, "dense" if load else "skip"),
    f"{prefix}.bias": (linear.bias, "copy" if load else "skip"),
  }


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """A state_dict as numpy float32 arrays from `.safetensors` or a torch `.pth`/`.pt`."""
  path = Path(path)
  if not path.is_file():
    raise UserError(f"config.model.weights: {path} does not exist")
  try:
    if path.suffix == ".safetensors":
      from safetensors.numpy import load_file

      return {k: np.asarray(v, np.float32) for k, v in load_file(str(path)).items()}
    import torch  # only for .pth files; not a dependency of the rest of the package

    state = torch.load(str(path), map_location="cpu", weights_only=True)
  except ImportError as e:
    raise UserError(f"{path}: reading it needs {e.name} (pip install {e.name})") from None
  except Exception as e:  # torch raises UnpicklingError for pickled code, others for junk
    first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
    raise UserError(f"{path}: not a loadable weights-only state_dict ({first})") from None
  if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
    state = state["state_dict"]
  if not isinstance(state, dict):
    raise UserError(f"{path}: expected a state_dict (dict of tensors), got {type(state).__name__}")
  return {
    k: v.detach().float().numpy() if hasattr(v, "detach") else np.asarray(v, np.float32)
    for k, v in state.items()
  }


def _torch_shape(kind: Kind, ours: tuple[int, ...]) -> tuple[int, ...]:
  if isinstance(kind, Conversion):
    return tuple(kind.torch_shape(ours))
  if kind == "conv":  # [*K, I, O] -> [O, I, *K]
    return (ours[-1], ours[-2], *ours[:-2])
  if kind == "dense":
    return ours[::-1]
  return ours


def _convert(value: np.ndarray, kind: Kind, ours: tuple[int, ...], inflate: bool):
  """Our array from torch's `value`, or None if its shape does not fit (even inflated)."""
  if isinstance(kind, Conversion):
    return kind.to_ours(value, ours) if value.shape == _torch_shape(kind, ours) else None
  expected = _torch_shape(kind, ours)
  if kind == "conv" and inflate and value.shape != expected:
    if value.ndim == len(expected) - 1 and value.ndim >= 3:  # 2D -> 3D: repeat along D / kd
      kd = expected[2]
      value = np.repeat(value[:, :, None], kd, axis=2) / kd
    if value.shape[1] == 3 and expected[1] == 1:  # RGB -> one channel
      value = value.sum(axis=1, keepdims=True)
  if value.shape != expected:
    return None
  if kind == "conv":
    return np.moveaxis(value, (0, 1), (-1, -2))
  return value.T if kind == "dense" else value


def check_kinds(keys: KeyMap) -> None:
  """ValueError naming a key whose kind is unknown (a key map's bug, not the file's)."""
  for key, (_, kind) in keys.items():
    if not isinstance(kind, Conversion) and kind not in KINDS:
      raise ValueError(f"keys: {key!r} has unknown kind {kind!r}; valid: {', '.join(KINDS)}")


def load_state_dict(
  state: Mapping[str, np.ndarray],
  keys: KeyMap,
  *,
  source: str,
  what: str,
  inflate: bool = False,
) -> None:
  """Writes `state` into the parameters of `keys` in place, all or nothing.

  Raises one UserError `"{source}: does not match {what}: ..."` naming missing, unexpected and
  mis-shaped keys (at most six of each kind, then '...').
  """
  check_kinds(keys)
  missing = [k for k in keys if k not in state]
  unexpected = [k for k in state if k not in keys]
  problems = [
    f"{label} keys {', '.join(names[:6])}{' ...' if len(names) > 6 else ''}"
    for label, names in (("missing", missing), ("unexpected", unexpected))
    if names
  ]
  converted = {}
  for key, (param, kind) in keys.items():
    if kind == "skip" or key not in state:
      continue
    ours = tuple(param[...].shape)
    value = _convert(np.asarray(state[key], np.float32), kind, ours, inflate)
    if value is None:
      hint = " (a 2D file into a 3D model needs model.inflate=True)" if kind == "conv" else ""
      problems.append(
        f"{key} has shape {tuple(state[key].shape)}, expected {_torch_shape(kind, ours)}{hint}"
      )
      continue
    converted[key] = value
  if problems:
    raise UserError(f"{source}: does not match {what}: " + "; ".join(problems))
  for key, value in converted.items():
    keys[key][0][...] = jnp.asarray(value, keys[key][0][...].dtype)


def load(
  model: nnx.Module,
  path: str | os.PathLike,
  keys: KeyMap,
  what: str,
  *,
  inflate: bool = False,
  rename: Callable[[str], str] | None = None,
) -> bool:
  """Loads the state_dict in `path` into `model` through `keys`; `rename` maps a file's keys to
  the current layout first (older torchvision files). Returns False without reading the file
  when the model is abstract (`nnx.eval_shape`: restoring a checkpoint, whose values win)."""
  leaves = jax.tree.leaves(nnx.state(model, nnx.Param))
  if leaves and isinstance(leaves[0], jax.core.Tracer | jax.ShapeDtypeStruct):
    return False
  state = read_state_dict(path)
  if rename is not None:
    state = {rename(k): v for k, v in state.items()}
  load_state_dict(state, keys, source=str(path), what=what, inflate=inflate)
  return True
