"""What each suite measures. Sizes are [D, H, W] volumes; BugNIST's own is 128x64x64.

`variants` are the JAX models timed everywhere, as (model.conv_impl, model.pool_impl);
`compare_variants` run only at the first shape of a kind, at the size `compare_at` names.
`torch_compiled`: the (kind, shape) pairs where `torch.compile` runs too (each shape and batch
is a compile of tens of seconds on CPU); None: everywhere. `families`: the batch of the train
and infer rows of every other registered model (`FAMILY_SIZES` gives its inputs and fields);
None: no family rows.
`sg_loop_shapes`: where the study's SmoothGrad loop runs beside Captum (None: everywhere).
`two_branch_at`: the (shape, batch) train groups that also time the two-branch step (None:
every train group). `moonshot`: (label, kind, shape, size, target rate) rows the report checks.
"""

from bugnist_jax.models import MODELS

REAL_MODEL = {"channels": (16, 32, 64, 128), "dense": 256}
FAST_CPU = ("planes", "argmax")  # what the configs' conv_impl='auto' gives on CPU
STRAIGHTFORWARD = ("xla", "reshape")  # XLA's own 3D convolution, pooling by reshape and max

SUITES = {
  # Seconds: a tiny model for the tests.
  "smoke": {
    "model": {"channels": (4, 8, 8, 8), "dense": 16},
    "train": [((32, 16, 16), (2, 4))],
    "infer": [((32, 16, 16), (4,))],
    "smoothgrad": [((32, 16, 16), (2, 4))],
    "sg_batch_sizes": (2,),
    "sg_consts": True,
    "epoch": [((32, 16, 16), 8, 2)],
    "variants": (FAST_CPU,),
    "compare_variants": (STRAIGHTFORWARD,),
    "compare_at": {"train": 4, "infer": 4, "smoothgrad": 2},
    "dtypes": ("float32",),
    "repeats": 1,
    "peaks": {"matmul_size": 256, "copy_mb": 8},
    "torch_compiled": None,
    "families": {"train": 2, "infer": 2},
    "moonshot": [],
  },
  # Meant for under 5 minutes on 2 idle CPU cores with inductor's cache cold (RESULTS.md has
  # the measured time): one batch per kind and shape but inference's two, where the ratio
  # changes most with the batch. Left out on CPU: 256x128x128 (a single SmoothGrad map takes
  # tens of seconds), more batches and sample counts, the device-resident epoch (a GPU path),
  # the study's SmoothGrad loop at 128x64x64 (15 s of the group; Captum on the best torch
  # configuration is the reference). The straightforward variant (XLA's own 3D convolution,
  # the slow path on CPU) runs at the smallest inference group only.
  "quick": {
    "model": REAL_MODEL,
    "train": [((64, 32, 32), (8,)), ((128, 64, 64), (4,))],
    "infer": [((64, 32, 32), (8, 32)), ((128, 64, 64), (8,))],
    "smoothgrad": [((64, 32, 32), (8,)), ((128, 64, 64), (8,))],
    "sg_batch_sizes": (8,),
    "sg_consts": True,
    "sg_loop_shapes": [(64, 32, 32)],
    "epoch": [],
    "variants": (FAST_CPU,),
    "compare_variants": (STRAIGHTFORWARD,),
    "compare_at": {"infer": 8},
    "dtypes": ("float32",),
    "repeats": 3,
    "peaks": {"matmul_size": 1024, "copy_mb": 64},
    "torch_compiled": [("infer", (128, 64, 64)), ("train", (128, 64, 64))],
    "two_branch_at": [((64, 32, 32), 8), ((128, 64, 64), 4)],
    "families": None,  # their own suite, below
    "moonshot": [],
  },
  # Every other registered family (`FAMILY_SIZES`) on a CPU: a train step and an inference
  # batch at two sizes each, JAX only (a few minutes on 2 cores).
  "families": {
    "model": REAL_MODEL,
    **{kind: [] for kind in ("train", "infer", "smoothgrad", "epoch")},
    "sg_batch_sizes": (),
    "sg_consts": False,
    "variants": (FAST_CPU,),
    "compare_variants": (),
    "compare_at": {},
    "dtypes": ("float32",),
    "repeats": 3,
    "peaks": {"matmul_size": 1024, "copy_mb": 64},
    "torch_compiled": None,
    "families": {"train": 8, "infer": 8},
    "moonshot": [],
  },
  # GPU/TPU: every size, bf16 beside float32, a whole BugNIST-sized epoch on device.
  "full": {
    "accelerator": True,
    "model": REAL_MODEL,
    "train": [((64, 32, 32), (8, 32, 128)), ((128, 64, 64), (8, 32, 64)), ((256, 128, 128), (8,))],
    "infer": [((64, 32, 32), (32, 256)), ((128, 64, 64), (32, 128)), ((256, 128, 128), (16,))],
    "smoothgrad": [
      ((64, 32, 32), (8, 32, 128)),
      ((128, 64, 64), (8, 32, 50, 128)),
      ((256, 128, 128), (8, 32)),
    ],
    "sg_batch_sizes": (8, 32),
    "sg_consts": True,
    "epoch": [((128, 64, 64), 9154, 64)],
    "variants": (("xla", "argmax"), STRAIGHTFORWARD),
    "compare_variants": (FAST_CPU,),
    "compare_at": {"train": 32, "infer": 32, "smoothgrad": 8},
    "dtypes": ("float32", "bfloat16"),
    "repeats": 5,
    "peaks": {"matmul_size": 8192, "copy_mb": 1024},
    "torch_compiled": None,
    "families": {"train": 64, "infer": 256},
    # Rates that would change how the studies are run (targets, not measurements).
    "moonshot": [
      ("a BugNIST epoch (9154 volumes) in 10 s", "epoch", (128, 64, 64), 64, 915.4),
      (
        "SmoothGrad n=50 of the test split (1830) in a minute",
        "smoothgrad",
        (128, 64, 64),
        50,
        30.5,
      ),
      ("inference of all 9154 volumes in a second", "infer", (128, 64, 64), 128, 9154.0),
      ("a 256x128x128 train step at 100 vol/s", "train", (256, 128, 128), 8, 100.0),
    ],
  },
}

# Rows of each registered family other than BugCNN3D: (input shape, model fields, in_channels
# or None for the spec's test value), two sizes each, and the 3D networks of the model-family
# issue on one-channel volumes. A family missing here (a new entry of MODELS) runs at
# DEFAULT_SHAPES with its own defaults; families() walks MODELS, so an entry here without a
# registered model is ignored.
_R18, _R2P1 = {"variant": "resnet18"}, {"variant": "resnet18", "conv": "r2plus1d"}
_D121, _VGG = {"variant": "densenet121"}, {"width": 0.5, "hidden": 512}
FAMILY_SIZES = {
  "cnn2d": [((112, 112), {"arch": 2}, None), ((224, 224), {"arch": 2}, None)],
  "vgg19": [((64, 64), _VGG, None), ((128, 128), _VGG, None)],
  "lenet5": [((32, 32), {}, None), ((64, 64), {}, None)],
  "resnet": [
    ((112, 112), _R18, None), ((224, 224), _R18, None),
    ((32, 32, 32), _R18, 1), ((64, 32, 32), _R18, 1),
    ((32, 32, 32), _R2P1, 1), ((64, 32, 32), _R2P1, 1),
  ],
  "densenet": [
    ((112, 112), {"variant": "covid"}, None), ((224, 224), {"variant": "covid"}, None),
    ((32, 32, 32), _D121, 1), ((64, 32, 32), _D121, 1),
  ],
}  # fmt: skip
DEFAULT_SHAPES = {2: (128, 128), 3: (64, 32, 32)}


def families(tiny: bool = False) -> list[tuple[str, tuple, dict, int]]:
  """(name, input shape, model fields, in_channels) of every registered family but BugCNN3D;
  `tiny`: each spec's test size (what the contract test builds), once per family."""
  out = []
  for name, spec in MODELS.items():
    if name == "bugcnn3d":
      continue
    if tiny:
      out.append(
        (name, tuple(spec.test_input_shape), dict(spec.test_kwargs), spec.test_in_channels)
      )
      continue
    ndim = len(spec.test_input_shape)
    for shape, kwargs, channels in FAMILY_SIZES.get(name, [(DEFAULT_SHAPES[ndim], {}, None)]):
      out.append((name, tuple(shape), dict(kwargs), channels or spec.test_in_channels))
  return out


TINY_SHAPE = (32, 16, 16)


def shrink(suite: dict) -> dict:
  """The same suite on tiny sizes: a smoke model, every volume 32x16x16, at most 4 per batch
  or map, one round; kinds, variants, dtypes, torch configurations and moonshot rows stay, so
  every code path of it runs on a CPU in seconds per group."""
  tiny_size = lambda n: min(n, 4)
  uniq = lambda sizes: tuple(dict.fromkeys(map(tiny_size, sizes)))
  out = dict(suite, model=SUITES["smoke"]["model"], repeats=1, peaks=SUITES["smoke"]["peaks"])
  for kind in ("train", "infer", "smoothgrad"):
    sizes = [n for _, ns in suite[kind] for n in ns]
    out[kind] = [(TINY_SHAPE, uniq(sizes))] if sizes else []
  out["epoch"] = [(TINY_SHAPE, 8, 4)] if suite["epoch"] else []
  out["sg_batch_sizes"] = uniq(suite["sg_batch_sizes"])
  out["compare_at"] = {k: tiny_size(v) for k, v in suite["compare_at"].items()}
  out["families"] = {k: 2 for k in suite["families"] or {}} or None
  if suite.get("sg_loop_shapes") is not None:
    out["sg_loop_shapes"] = [TINY_SHAPE]
  if suite["torch_compiled"] is not None:
    out["torch_compiled"] = [(k, TINY_SHAPE) for k, _ in suite["torch_compiled"]]
  out["moonshot"] = [
    (label, kind, TINY_SHAPE, 4 if kind == "epoch" else tiny_size(size), target)
    for label, kind, _, size, target in suite["moonshot"]
  ]
  out["tiny"] = True
  return out
