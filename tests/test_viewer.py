"""The viewer without a browser: the wire format, the per-stage panels against the model, the
graph of a model with branches, the HTTP API (and its answers to bad requests), the feature-
visualisation cache, the static export and the command."""

import base64
import io
import json
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tifffile
from flax import nnx
from viewer_support import FEATUREVIS_STAGE, api, get, live

from bugnist_jax.errors import UserError
from bugnist_jax.inspection import receptive_fields
from bugnist_jax.models import BugCNN3D
from bugnist_jax.models.adapters import Bound, eval_view
from bugnist_jax.models.contract import FLAT, Stage
from bugnist_jax.models.layers import Logits
from bugnist_jax.runs import Run
from bugnist_jax.viewer import KINDS, Panels, blob, export_site, read_cache, write_cache
from bugnist_jax.viewer.featurevis import cache_path

pytestmark = pytest.mark.xdist_group("viewer")  # one worker starts each run's server once


def test_blob_round_trip_alignment_and_quantisation():
  arrays = {
    "a": np.arange(5, dtype=np.int8) - 2,
    "b": np.arange(6, dtype=np.float32).reshape(2, 3) / 7,
    "c": np.array([3], np.int32),
    "d": np.zeros((0, 2), np.uint8),
  }
  buffer = blob.encode({"x": "y", "n": 3}, arrays)
  meta, back = blob.decode(buffer)
  assert meta == {"x": "y", "n": 3}
  for name, a in arrays.items():
    np.testing.assert_array_equal(back[name], a)
    assert back[name].dtype == a.dtype
  n = int.from_bytes(buffer[4:8], "little")
  specs = json.loads(buffer[8 : 8 + n])["arrays"]
  assert all(s["offset"] % 8 == 0 for s in specs.values()) and (8 + n + (-(8 + n) % 8)) % 8 == 0
  with pytest.raises(ValueError, match="dtype"):
    blob.encode({}, {"bad": np.zeros(2, np.float64)})
  with pytest.raises(ValueError, match="magic"):
    blob.decode(b"XXXX" + buffer[4:])
  codes, scale = blob.quantize(np.array([-2.0, 0.0, 1.0, 4.0]))
  assert scale == 4.0 and codes.tolist() == [-64, 0, 32, 127]
  assert blob.quantize(np.zeros(3))[1] == 1.0  # an all-zero layer stays black


def test_panels_are_the_model_forward_quantised(trained_run):
  model = Run.open(trained_run).model
  panels = Panels(model)
  x = np.random.default_rng(1).normal(size=(1, *model.input_shape, 1)).astype(np.float32)
  outputs, summaries = panels.summaries(x)
  _, reference = model.forward(x)
  assert [s.name for s in panels.stages] == ["input", *model.layer_names]
  for name, y in reference.items():
    y = np.asarray(y)[0]
    np.testing.assert_allclose(np.asarray(outputs[name])[0], y, rtol=1e-6, atol=1e-6)
    s = summaries[name]
    assert s["scale"] == pytest.approx(np.abs(y).max())
    expected = np.round(y / s["scale"] * 127)
    codes = s["codes"] if y.ndim == 1 else np.moveaxis(s["codes"], 0, -1)
    assert np.abs(codes - expected).max() <= 1  # float rounding at .5
    assert s["counts"].sum() == y.size and s["min"] == pytest.approx(y.min())
  fields = receptive_fields(model, model.input_shape)
  info = panels.by_name["block2"]
  assert info.rf["size"] == list(fields["block2"].size) and info.sources == ("block1",)
  assert panels.by_name["dense1"].rf is None  # flat: sees the whole input
  weights = panels.weights["block1"]
  assert weights["counts"].sum() == model.block1.conv.kernel[...].size  # kernels, not biases


class _Pair(Stage):
  """A branch with two sources: the means of the input and of a feature map."""

  kind = FLAT

  def __call__(self, x, a):
    return jnp.concatenate([x.mean(axis=(1, 2, 3)), a.mean(axis=(1, 2, 3))], -1)


class _Branched(BugCNN3D):
  """BugCNN3D with an auxiliary classifier on block4 and a two-source branch."""

  def __init__(self, **kwargs):
    super().__init__(**kwargs)
    self.aux = Logits(int(np.prod([s // 16 for s in self.input_shape])) * 4, 3, rngs=nnx.Rngs(1))
    self.pair = _Pair()
    self.branches = {"aux": ("block4",), "pair": ("input", "block1")}


def test_the_graph_and_branches_come_from_the_contract():
  kwargs = {"input_shape": (16, 16, 16), "channels": (2, 3, 4, 4), "dense": 6}
  model = eval_view(_Branched(**kwargs, rngs=nnx.Rngs(0)))
  panels = Panels(model)
  graph = {s["name"]: s for s in panels.describe()}
  assert graph["aux"]["role"] == "branch" and graph["aux"]["sources"] == ["block4"]
  assert graph["pair"]["sources"] == ["input", "block1"] and graph["pair"]["kind"] == "flat"
  assert graph["logits"]["sources"] == ["dense1"] and graph["input"]["role"] == "input"
  x = np.random.default_rng(0).normal(size=(1, 16, 16, 16, 1)).astype(np.float32)
  outputs, summaries = panels.summaries(x)
  _, reference = jax.jit(Bound.from_model(model).forward)(x)  # eager: ~20 s of op compiles
  for name in ("aux", "pair"):
    np.testing.assert_allclose(np.asarray(outputs[name]), np.asarray(reference[name]), atol=1e-6)
    assert summaries[name]["codes"].shape == reference[name].shape[1:]


def test_the_api_answers_every_kind(trained_run):
  server = live(str(trained_run))
  status, headers, body = get(server, "/")
  assert status == 200 and b"static/viewer.js" in body
  assert "default-src 'self'" in headers["Content-Security-Policy"]
  meta, arrays = blob.decode(get(server, api("manifest"))[2])
  assert [s["name"] for s in meta["stages"]][:2] == ["input", "block1"]
  assert meta["ndim"] == 3 and meta["featurevis"] == [FEATUREVIS_STAGE]
  assert arrays["w_block1_counts"].dtype == np.int32 and arrays["w_block1_edges"].shape == (17,)
  meta, arrays = blob.decode(get(server, api("items", split="test", page=0))[2])
  assert meta["ids"][0] == "test:0" and arrays["thumbs"].shape == (12, 32, 16, 1)
  meta, arrays = blob.decode(get(server, api("item", item="test:3"))[2])
  assert arrays["probs"].sum() == pytest.approx(1, abs=1e-5) and meta["label"] >= 0
  assert arrays["image"].shape == (32, 16, 16, 1)
  for stage in meta_stages(server):
    status, headers, body = get(server, api("stage", item="test:3", stage=stage["name"]))
    assert status == 200 and headers["Content-Type"] == "application/octet-stream"
    m, a = blob.decode(body)
    channels = stage["shape"][-1] if stage["kind"] == "spatial" else None
    assert a["panels"].dtype == np.int8 and (channels is None or a["panels"].shape[0] == channels)
  m, a = blob.decode(
    get(server, api("attribution", item="test:3", method="vanilla_gradient", target="true"))[2]
  )
  assert a["policy"].shape == (32, 16, 16) and "signed" in a and m["sign"] == "absolute"
  assert a["policy"].min() >= 0 and a["signed"].min() < 0  # |.| versus signs summed
  status, headers, body = get(server, api("tiff", item="test:3", stage="block1"))
  assert status == 200 and "attachment" in headers["Content-Disposition"]
  assert tifffile.imread(io.BytesIO(body)).shape == (16, 4, 8, 8)  # Z, C, Y, X
  m, a = blob.decode(get(server, api("featurevis", stage=FEATUREVIS_STAGE))[2])
  assert a["channels"].tolist() == [1, 0] and a["images"].shape == (2, 32, 16, 16, 1)


def meta_stages(server):
  return blob.decode(get(server, api("manifest"))[2])[0]["stages"]


BAD = [
  ("/api/stage?item=test:999&stage=block1", 404, "no 999"),
  ("/api/stage?item=nosplit:0&stage=block1", 404, "unknown 'nosplit'"),
  ("/api/stage?item=test:0&stage=block9", 404, "unknown 'block9'"),
  ("/api/attribution?item=test:0&method=magic&target=predicted", 404, "unknown 'magic'"),
  ("/api/nothing", 404, "unknown request"),
  ("/api/items?split=test&page=-1", 400, "not a non-negative integer"),
  ("/api/items?split=test&page=1e3", 400, "not a non-negative integer"),
  ("/api/items?split=test&page=7", 404, "past the last page"),
  ("/api/items?split=test", 400, "missing parameter 'page'"),
  ("/api/items?split=test&page=0&page=1", 400, "given twice"),
  ("/api/items?split=test&page=0&x=1", 400, "unknown parameter 'x'"),
  ("/api/item?item=test:0&&&", 400, "malformed query"),
  ("/api/item?item=test:x", 400, "not <split>:<index>"),
  ("/api/item?item=" + "a" * 300, 400, "longer than"),
  ("/api/item?item=noise:-3", 400, "not <split>:<index>"),
  ("/api/attribution?item=test:0&method=grad_cam&target=99", 400, "class 99"),
  ("/api/attribution?item=test:0&method=grad_cam&target=best", 400, "'predicted', 'true'"),
  ("/api/attribution?item=noise:1&method=grad_cam&target=true", 400, "no true class"),
  ("/api/tiff?item=test:0&stage=dense1", 400, "not a 3D feature map"),
  ("/api/featurevis?stage=block1", 404, "no feature visualisations"),
]
# Ways out of the static folder and the workdir: each must be a 4xx that reveals nothing.
TRAVERSAL = [
  "/static/../../../../etc/passwd",
  "/static/..%2f..%2f..%2fconfig.json",
  "/static/%2e%2e/%2e%2e/secret.txt",
  "/static//etc/passwd",
  "/../secret.txt",
  "/data/../config.json",
  "/api/featurevis?stage=../../secret",
  "/api/featurevis?stage=..%2F..%2Fsecret",
  "/api/stage?item=test:0&stage=../config",
  "/api/item?item=../../secret.txt",
  "/api/tiff?item=test:0&stage=%2Fetc%2Fpasswd",
]


def test_bad_requests_get_4xx_and_the_server_keeps_serving(trained_run):
  server = live(str(trained_run))
  workdir = server.data.run.workdir
  secret = "top-secret-" + "7" * 12
  (workdir.parent / "secret.txt").write_text(secret)  # beside the workdir, never served
  (workdir / "secret.txt").write_text(secret)  # in it, but not a file the viewer serves
  for path, status, fragment in BAD:
    got, headers, body = get(server, path)
    assert got == status, (path, body)
    assert fragment in json.loads(body)["error"], (path, body)
    assert get(server, api("manifest"))[0] == 200  # still serving
  for path in TRAVERSAL:
    got, _, body = get(server, path)
    assert 400 <= got < 500 and secret.encode() not in body, (path, got)
    assert b"root:" not in body and b'"model"' not in body  # no /etc/passwd, no config.json
  for method in ("POST", "PUT", "DELETE", "HEAD"):
    assert get(server, "/api/manifest", method)[0] == 405
  assert get(server, api("item", item="test:0"))[0] == 200


def test_featurevis_cache_format(tmp_path):
  images = np.zeros((2, 4, 4, 3), np.uint8)
  path = write_cache(tmp_path, "conv2", images, [5, 2], "mean activation")
  assert path == tmp_path / "featurevis" / "conv2.npz"
  cache = read_cache(tmp_path, "conv2", (4, 4), num_channels=6)
  assert cache["channels"].tolist() == [5, 2] and cache["objective"] == "mean activation"
  assert read_cache(tmp_path, "conv1", (4, 4), 6) is None
  with pytest.raises(ValueError, match=r"channels must be in \[0, 4\)"):
    read_cache(tmp_path, "conv2", (4, 4), num_channels=4)
  with pytest.raises(ValueError, match="the model input is"):
    read_cache(tmp_path, "conv2", (8, 8), num_channels=6)
  with pytest.raises(ValueError, match="uint8"):
    write_cache(tmp_path, "conv3", images.astype(np.float32), [0, 1])
  with pytest.raises(ValueError, match="unique"):
    write_cache(tmp_path, "conv3", images, [1, 1])
  with pytest.raises(ValueError, match="not a stage name"):
    cache_path(tmp_path, "../x")
  (tmp_path / "featurevis" / "conv4.npz").write_bytes(b"not a zip")
  with pytest.raises(ValueError, match="not a feature-visualisation cache"):
    read_cache(tmp_path, "conv4", (4, 4), 6)


def _delivered(path) -> tuple[dict, dict]:
  text = path.read_text()
  match = re.fullmatch(r'BV\.deliver\("([^"]+)", "([A-Za-z0-9+/=]*)"\);\n', text)
  assert match and match.group(1) == path.stem
  return blob.decode(base64.b64decode(match.group(2)))


def test_static_export_holds_every_answer_the_page_needs(trained_run, tmp_path):
  data = live(str(trained_run)).data
  out = tmp_path / "site"
  index = export_site(data, out, ["test:1", "noise:4"], ["grad_cam"])
  assert index == out / "index.html" and (out / "static" / "viewer.js").is_file()
  assert (out / "data" / "static.js").read_text().strip() == "window.BV_STATIC = true;"
  meta, _ = _delivered(out / "data" / "b" / "manifest.js")
  assert meta["static"] and [m["name"] for m in meta["methods"]] == ["grad_cam"]
  assert meta["splits"] == {"exported": 2} and meta["targets"] == ["predicted"]
  meta, arrays = _delivered(out / "data" / "b" / "items__exported__0.js")
  assert meta["ids"] == ["test:1", "noise:4"] and arrays["labels"].tolist()[1] == -1
  for stage in data.panels.stages:
    assert _delivered(out / "data" / "b" / f"stage__test-1__{stage.name}.js")[0]["stage"] == (
      stage.name
    )
  assert (out / "data" / "b" / "attribution__noise-4__grad_cam__predicted.js").is_file()
  assert (out / "data" / "b" / f"featurevis__{FEATUREVIS_STAGE}.js").is_file()
  tiff = tifffile.imread(out / "tiff" / "tiff__test-1__block2.tif")
  assert tiff.shape == (8, 8, 4, 4)
  assert set(KINDS) >= {p.stem.split("__")[0] for p in (out / "data" / "b").iterdir()}
  export_site(data, out, ["test:2"], [])  # an old export is replaced
  assert not (out / "data" / "b" / "item__test-1.js").exists()
  (tmp_path / "other").mkdir()
  (tmp_path / "other" / "notes.txt").write_text("mine")
  with pytest.raises(UserError, match="not empty and holds no viewer export"):
    export_site(data, tmp_path / "other", ["test:0"], [])
  with pytest.raises(UserError, match="--items: item: test has 12 items"):
    export_site(data, tmp_path / "new", ["test:50"], [])


def _view(*args, **kwargs):
  return subprocess.run(
    [sys.executable, "-m", "bugnist_jax.view", *args], capture_output=True, text=True, **kwargs
  )


@pytest.mark.parametrize(
  "args, fragment",
  [
    (["--workdir=/nonexistent/run"], "config.json: missing"),
    (["--workdir=.", "--method=magic"], "--method: unknown 'magic'"),
    (["--workdir=.", "--port=70000"], "--port: 70000 is not a port"),
  ],
)
def test_the_command_fails_in_one_line(args, fragment):
  out = _view(*args, timeout=300)
  errors = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
  assert out.returncode == 2 and len(errors) == 1 and fragment in errors[0], out.stderr[-2000:]
  assert "Traceback" not in out.stderr


def test_the_command_serves_and_prints_its_url(trained_run):
  process = subprocess.Popen(
    [sys.executable, "-m", "bugnist_jax.view", f"--workdir={trained_run}", "--port=0"],
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
  )
  try:
    line = process.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    assert match, line + process.stderr.read()
    import urllib.request

    with urllib.request.urlopen(match.group(0) + "api/manifest", timeout=60) as response:
      assert blob.decode(response.read())[0]["model"] == "BugCNN3D"
  finally:
    process.terminate()
    process.wait(timeout=60)


def test_the_viewer_benchmark_runs_on_a_tiny_model(tmp_path):
  from benchmarks import viewer as bench
  from benchmarks.measure import run_interleaved

  made, server = bench.runners((16, 16, 16), {"channels": (2, 3, 4, 4), "dense": 6}, tmp_path)
  try:
    results = run_interleaved(made, repeats=2)
  finally:
    server.shutdown()
  assert [r["runner"] for r in results] == ["library", "http"]
  for r in results:
    assert len(r["times_s"]) == 2 and min(r["times_s"]) > 0 and r["stages"] == 7
  assert len(server.data._items) == 6  # a new item per call: 2 runners x (1 warm-up + 2)
