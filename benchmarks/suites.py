"""What each suite measures. Sizes are [D, H, W] volumes; BugNIST's own is 128x64x64.

`variants` are the JAX models timed everywhere, as (model.conv_impl, model.pool_impl);
`compare_variants` run only at the first shape of a kind, at the size `compare_at` names.
"""

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
  },
  # Meant for under 5 minutes on 2 idle CPU cores. 256x128x128 is left out on CPU (a single
  # SmoothGrad map takes tens of seconds). The straightforward variant (XLA's own 3D
  # convolution, the slow path on CPU) runs only at the smallest shape.
  "quick": {
    "model": REAL_MODEL,
    "train": [((64, 32, 32), (2, 8, 32)), ((128, 64, 64), (4,))],
    "infer": [((64, 32, 32), (8, 32)), ((128, 64, 64), (8,))],
    "smoothgrad": [((64, 32, 32), (8, 32, 128)), ((128, 64, 64), (8,))],
    "sg_batch_sizes": (8,),
    "sg_consts": True,
    "epoch": [((64, 32, 32), 64, 8)],
    "variants": (FAST_CPU,),
    "compare_variants": (STRAIGHTFORWARD,),
    "compare_at": {"train": 8, "infer": 8, "smoothgrad": 8},
    "dtypes": ("float32",),
    "repeats": 3,
    "peaks": {"matmul_size": 1024, "copy_mb": 64},
  },
  # GPU/TPU: every size, bf16 beside float32, a whole BugNIST-sized epoch on device.
  "full": {
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
  },
}
