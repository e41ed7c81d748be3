"""The benchmark suites' structure: torch configurations, Captum on the best one, process
isolation, registry-driven families, the GPU suite shrunk to run on a CPU, moonshot rows."""

import json
import os

import numpy as np
import pytest

from benchmarks import harness, report, suites
from benchmarks.isolation import Spec, Workers, run_group
from benchmarks.run import BenchmarkError, run_suite
from bugnist_jax.models import MODELS

TINY = {"channels": (2, 3, 4, 4), "dense": 6}
SHAPE = (16, 16, 16)


def _row(framework, variant, rate, kind="train", **kw):
  row = dict(kind=kind, framework=framework, variant=variant, rate_median=rate, name=variant)
  return row | dict(shape=[16, 16, 16], batch=2, dtype="float32", items=2) | kw


def test_ratios_against_the_best_torch_configuration_and_captum_follows_it():
  group = [
    _row("jax", "planes/argmax", 30.0),
    _row("torch", "eager", 10.0),
    _row("torch", "channels_last", 20.0),
    _row("torch", "compiled", 25.0),
  ]
  best = {}
  harness.note_best_torch(best, "train", group)
  # Captum's configuration: the fastest eager one (Captum through a compiled model is slower).
  assert best == {((16, 16, 16), "float32"): "channels_last"}
  harness.add_derived(group, {"matmul_flops_float32": 1e11, "copy_bytes_per_s": 1e10}, TINY)
  assert group[0]["ratio_vs_best"] == pytest.approx(1.2) and group[0]["ratio_vs_eager"] == 3.0
  assert group[0]["best_torch"] == "compiled" and group[2]["ratio_vs_best"] == 0.8
  assert report._ratios(group[0]) == "best:1.20x eager:3.00x"
  # The SmoothGrad group's Captum runs on the configuration recorded above, the loop on eager.
  suite = suites.SUITES["smoke"] | {"smoothgrad": [(SHAPE, (2,))], "torch_compiled": []}
  (_, _, _, specs), *_ = harness.groups(suite, ["smoothgrad"], ("eager", "compiled"), best)
  torch_specs = [s.kwargs for s in specs if s.module == harness.TORCH]
  assert [(k["method"], k.get("config", "eager")) for k in torch_specs] == [
    ("loop", "eager"),
    ("captum", "channels_last"),
  ]
  # Where the suite names the loop's shapes, elsewhere Captum runs alone.
  elsewhere = suite | {"sg_loop_shapes": [(64, 32, 32)]}
  (_, _, _, specs), *_ = harness.groups(elsewhere, ["smoothgrad"], ("eager",), best)
  assert [s.kwargs["method"] for s in specs if s.module == harness.TORCH] == ["captum"]


def test_compiled_torch_only_where_the_suite_says():
  suite = suites.SUITES["quick"]
  configs = ("eager", "channels_last", "compiled")
  seen = {
    (kind, tuple(shape)): [s.kwargs.get("config") for s in specs if s.module == harness.TORCH]
    for kind, shape, _, specs in harness.groups(suite, ["train", "infer"], configs, {})
  }
  assert seen[("infer", (128, 64, 64))] == list(configs)
  assert seen[("train", (64, 32, 32))] == ["eager", "channels_last"]


def test_train_groups_time_the_two_branch_step_beside_the_first_variant():
  suite = suites.SUITES["quick"]
  where = {(tuple(shape), n) for shape, n in suite["two_branch_at"]}
  seen = set()
  for kind, shape, size, specs in harness.groups(suite, ["train", "infer"], (), {}):
    two = [s for s in specs if s.kwargs.get("saliency_branch")]
    assert len(two) == (kind == "train" and (tuple(shape), size) in where), (kind, shape, size)
    if two:
      seen.add((tuple(shape), size))
      assert two[0].args[2:] == tuple(suite["variants"][0]) and two[0].module == harness.JAX
  assert seen == where  # every listed group exists


def test_the_two_branch_row_is_compared_with_the_plain_step_and_has_a_compute_roof():
  row = lambda rate, **kw: {
    "kind": "train", "framework": "jax", "shape": [8, 8, 8], "batch": 4, "dtype": "float32",
    "items": 4, "rate_median": rate, "variant": "planes/argmax", "xla_flops": 4e9, **kw,
  }  # fmt: skip
  plain, two = row(10.0), row(8.0, variant="planes/argmax two-branch", saliency_branch=True)
  peaks = {"matmul_flops_float32": 100e9, "copy_bytes_per_s": 1e9}
  harness.add_derived([plain, two], peaks, suites.SUITES["smoke"]["model"])
  assert two["ratio_vs_plain"] == pytest.approx(0.8) and "ratio_vs_plain" not in plain
  # XLA's bytes are no minimum: the roof is the compute peak (8 vol/s x 1 GFLOP / 100 GFLOP/s).
  assert two["bytes_per_item"] is None and two["roofline"] == pytest.approx(0.08)


def test_every_registered_family_gets_rows(monkeypatch):
  names = {
    kind_name
    for _, _, _, specs in harness.groups(suites.SUITES["families"], ["families"], (), {})
    for kind_name in [specs[0].kwargs["family"]]
  }
  assert names == set(MODELS) - {"bugcnn3d"}
  # Two sizes of each, and the 3D networks (ResNet-18, its R(2+1)D form, DenseNet-121).
  rows = suites.families()
  assert all(sum(r[0] == n for r in rows) >= 2 for n in names)
  volumes = {(r[2].get("variant"), r[2].get("conv")) for r in rows if len(r[1]) == 3}
  assert volumes == {("resnet18", None), ("resnet18", "r2plus1d"), ("densenet121", None)}
  assert not list(harness.groups(suites.SUITES["quick"], ["families"], (), {}))  # own suite
  # A family registered later (no size table entry) appears at the default size for its rank.
  monkeypatch.setitem(MODELS, "newnet", MODELS["cnn2d"])
  rows = {name: (shape, kw) for name, shape, kw, _ in suites.families()}
  assert rows["newnet"] == (suites.DEFAULT_SHAPES[2], {})


@pytest.mark.slow  # torch.compile / worker processes: minutes of CPU; `make test-all`
def test_torch_configurations_compute_the_same_function():
  torch = pytest.importorskip("torch")
  from benchmarks import torch_cases

  kw = {"model_kw": TINY}
  x, _ = torch_cases._inputs(SHAPE, 2)
  eager = torch_cases._model(SHAPE, TINY).eval()
  last = torch_cases._model(SHAPE, TINY, "channels_last").eval()
  compiled = torch_cases._model(SHAPE, TINY, "compiled", backend="eager").eval()
  xl, _ = torch_cases._inputs(SHAPE, 2, "channels_last")
  assert xl.is_contiguous(memory_format=torch.channels_last_3d)
  assert last.features[0].weight.is_contiguous(memory_format=torch.channels_last_3d)
  with torch.no_grad():
    want = eager(x).numpy()
    np.testing.assert_allclose(last(xl).numpy(), want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(compiled(xl).numpy(), want, rtol=1e-4, atol=1e-5)
  runner = torch_cases.train_runner(SHAPE, 2, config="compiled", backend="eager", **kw)
  assert runner.setup() >= 0 and runner.info["variant"] == "compiled"
  with pytest.raises(ValueError, match="config"):
    torch_cases.infer_runner(SHAPE, 2, config="jit", **kw)


@pytest.mark.slow  # torch.compile / worker processes: minutes of CPU; `make test-all`
def test_process_isolation_times_in_a_worker_per_framework_and_names_a_failure():
  spec = Spec(harness.JAX, "infer_runner", (SHAPE, 2, "planes", "argmax"), {"model_kw": TINY})
  other = Spec(harness.JAX, "infer_runner", (SHAPE, 3, "planes", "argmax"), {"model_kw": TINY})
  with Workers(threads=1) as workers:
    results = run_group([spec, other], 2, isolation="process", threads=1, workers=workers)
    (worker,) = workers.workers.values()  # both JAX runners in one child, not this process
    assert worker.process.is_alive() and worker.process.pid != os.getpid()
  assert [r["batch"] for r in results] == [2, 3]
  for res in results:
    assert len(res["times_s"]) == 2 and res["rate_median"] > 0


def test_a_failing_runner_in_a_worker_is_named_and_a_bad_isolation_refused():
  """In CI: the default isolation's worker and pipe, on a cheap child that imports no jax."""
  bad = Spec("benchmarks.isolation", "no_such_runner")
  with pytest.raises(RuntimeError, match="no_such_runner.*AttributeError"):
    run_group([bad], 1, isolation="process", threads=1)
  with pytest.raises(ValueError, match="isolation"):
    run_group([bad], 1, isolation="threads", threads=1)


def test_the_gpu_suite_refuses_a_cpu_and_bad_kinds_are_named(tmp_path):
  """In CI: both are refused before anything is built or timed."""
  with pytest.raises(BenchmarkError, match="--suite=full: meant for a GPU"):
    run_suite("full", tmp_path)
  with pytest.raises(BenchmarkError, match="--only: unknown 'training'"):
    run_suite("quick", tmp_path, only=["training"])


@pytest.mark.slow  # the whole GPU suite's code paths, shrunk: minutes of CPU; `make test-all`
def test_the_gpu_suite_runs_shrunk_on_a_cpu_with_the_device_check_off(tmp_path):
  doc = run_suite(
    "full",
    tmp_path,
    only=["infer"],
    torch_configs=("eager",),
    isolation="interleaved",
    tiny=True,
    require_accelerator=False,
  )
  rows = doc["results"]
  assert {r["dtype"] for r in rows} == {"float32", "bfloat16"}
  assert all(r["roofline"] > 0 and r["shape"] == list(suites.TINY_SHAPE) for r in rows)
  infer_moonshot = [m for m in doc["moonshot"] if m["kind"] == "infer"]
  assert infer_moonshot[0]["rate"] == max(r["rate_median"] for r in rows if r["framework"] == "jax")
  assert all(m["rate"] is None for m in doc["moonshot"] if m["kind"] != "infer")
  saved = json.loads((tmp_path / "results.json").read_text())
  assert len(saved["moonshot"]) == len(suites.SUITES["full"]["moonshot"])
  assert "| moonshot |" in (tmp_path / "results.md").read_text()
