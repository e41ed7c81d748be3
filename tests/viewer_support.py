"""Helpers of the viewer tests: one live server per run and test process, raw HTTP requests."""

import atexit
import functools
import http.client
import pathlib
import shutil
import tempfile
import urllib.parse

import numpy as np

from bugnist_jax.viewer import ViewerServer, ViewRequest, open_viewer, write_cache

FEATUREVIS_STAGE = "block2"  # the 3D test run gets a feature-visualisation cache here


@functools.cache
def live(workdir: str) -> ViewerServer:
  """A server on a free port for a copy of the run in `workdir` (the copy gets a feature-
  visualisation cache for FEATUREVIS_STAGE if the model has that stage), serving in a thread."""
  root = tempfile.mkdtemp(prefix="viewer_")
  atexit.register(shutil.rmtree, root, True)
  copy = pathlib.Path(root) / pathlib.Path(workdir).name
  shutil.copytree(workdir, copy, ignore=shutil.ignore_patterns("explain", "inside", "eval"))
  data = open_viewer(copy, ViewRequest())
  stage = data.panels.by_name.get(FEATUREVIS_STAGE)
  if stage is not None:
    spatial = tuple(data.run.model.input_shape)
    images = np.random.default_rng(0).integers(0, 256, (2, *spatial, 1), np.uint8)
    write_cache(copy, FEATUREVIS_STAGE, images, [1, 0], "mean activation")
    data.featurevis_caches = data._read_featurevis()
  server = ViewerServer(data, port=0)
  server.start()
  return server


def get(server: ViewerServer, path: str, method: str = "GET") -> tuple[int, dict, bytes]:
  """(status, headers, body) of a request for the raw `path` (sent as given, not normalised)."""
  host, port = server.server_address[:2]
  conn = http.client.HTTPConnection(host, port, timeout=120)
  try:
    conn.putrequest(method, path, skip_accept_encoding=True)
    conn.endheaders()
    response = conn.getresponse()
    return response.status, dict(response.getheaders()), response.read()
  finally:
    conn.close()


def api(kind: str, **params) -> str:
  """The path of an API request."""
  return f"/api/{kind}?{urllib.parse.urlencode(params)}"
