"""The viewer's HTTP server: the page, its static files, and `/api/<kind>?<params>` as blobs.

Routes (GET only; anything else is 405):

    /  /index.html          the page (`static/index.html`)
    /static/<file>          a file of `static/` by its bare name (a fixed list, read at start)
    /data/static.js         `window.BV_STATIC = false` (a static export writes `true` here)
    /api/<kind>?<params>    `ViewerData.answer(kind, params)`: an `application/octet-stream`
                            blob, or a TIFF for `tiff`

A bad request gets a 4xx status and `{"error": "<message>"}`; an unexpected failure a 500 with
the same shape; the server goes on serving either way. The only files a request can make the
server read are the fixed static files: the workdir is read by `Run.open` and the feature
visualisation cache at start, for the model's own stage names.
"""

import http.server
import json
import pathlib
import socket
import sys
import threading
import traceback
import urllib.parse

from bugnist_jax.viewer.data import KINDS, ViewerData, ViewerError

STATIC = pathlib.Path(__file__).parent / "static"
TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
}
# The page loads nothing from anywhere else: no CDN, no inline script.
POLICY = "default-src 'self'; img-src 'self' data: blob:; style-src 'self'"
MAX_VALUE = 200  # longest accepted query value


def static_files() -> dict[str, pathlib.Path]:
  """{bare name: path} of the page's files; the server serves these and nothing else."""
  return {p.name: p for p in sorted(STATIC.iterdir()) if p.is_file() and p.suffix in TYPES}


def parse_query(kind: str, query: str) -> dict[str, str]:
  """The parameters of a request `kind`: exactly `KINDS[kind]`, each once; ViewerError 400
  for a missing, repeated, unknown or overlong one."""
  try:
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
  except ValueError:
    raise ViewerError(400, f"malformed query {query[:80]!r}") from None
  params: dict[str, str] = {}
  for name, value in pairs:
    if name not in KINDS[kind]:
      expected = ", ".join(KINDS[kind]) or "none"
      raise ViewerError(400, f"{kind}: unknown parameter {name[:40]!r}; expected: {expected}")
    if name in params:
      raise ViewerError(400, f"{kind}: parameter {name!r} given twice")
    if len(value) > MAX_VALUE:
      raise ViewerError(400, f"{kind}: parameter {name!r} is longer than {MAX_VALUE} characters")
    params[name] = value
  missing = [n for n in KINDS[kind] if n not in params]
  if missing:
    raise ViewerError(400, f"{kind}: missing parameter {missing[0]!r}")
  return params


class Handler(http.server.BaseHTTPRequestHandler):
  """One request; `self.server` is a `ViewerServer`."""

  server_version = "bugnist-viewer/1"
  protocol_version = "HTTP/1.1"

  def do_GET(self) -> None:  # noqa: N802 - the http.server name
    try:
      status, content_type, body, extra = self.route()
    except ViewerError as e:
      status, content_type, extra = e.status, "application/json", {}
      body = json.dumps({"error": e.message}).encode()
    except Exception as e:  # noqa: BLE001 - one bad request must not stop the server
      traceback.print_exc(file=sys.stderr)
      status, content_type, extra = 500, "application/json", {}
      body = json.dumps({"error": f"{type(e).__name__}: {e}"[:500]}).encode()
    self.send_response(status)
    self.send_header("Content-Type", content_type)
    self.send_header("Content-Length", str(len(body)))
    self.send_header("Cache-Control", "no-store")
    self.send_header("Content-Security-Policy", POLICY)
    self.send_header("X-Content-Type-Options", "nosniff")
    for key, value in extra.items():
      self.send_header(key, value)
    self.end_headers()
    self.wfile.write(body)

  def _not_allowed(self) -> None:
    body = json.dumps({"error": f"method {self.command} not allowed; the viewer is GET only"})
    self.send_response(405)
    self.send_header("Allow", "GET")
    self.send_header("Content-Type", "application/json")
    self.send_header("Content-Length", str(len(body)))
    self.end_headers()
    self.wfile.write(body.encode())

  do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _not_allowed  # noqa: N815

  def route(self) -> tuple[int, str, bytes, dict[str, str]]:
    """(status, content type, body, extra headers) for the request path."""
    parts = urllib.parse.urlsplit(self.path)
    path = urllib.parse.unquote(parts.path)
    files = self.server.files
    if path in ("/", "/index.html"):
      return 200, TYPES[".html"], files["index.html"].read_bytes(), {}
    if path == "/data/static.js":
      return 200, TYPES[".js"], b"window.BV_STATIC = false;\n", {}
    if path.startswith("/static/"):
      name = path[len("/static/") :]
      if name not in files:
        raise ViewerError(404, f"no static file {name[:80]!r}")
      return 200, TYPES[files[name].suffix], files[name].read_bytes(), {}
    if path.startswith("/api/"):
      kind = path[len("/api/") :]
      if kind not in KINDS:
        raise ViewerError(404, f"unknown request {kind[:40]!r}; valid: {', '.join(KINDS)}")
      params = parse_query(kind, parts.query)
      body = self.server.data.answer(kind, params)
      if kind == "tiff":  # the item and stage were checked by the answer
        name = f"{params['item'].replace(':', '_')}_{params['stage']}.tif"
        return 200, "image/tiff", body, {"Content-Disposition": f'attachment; filename="{name}"'}
      return 200, "application/octet-stream", body, {}
    raise ViewerError(404, f"no such page {path[:80]!r}")

  def log_message(self, format: str, *args) -> None:  # noqa: A002 - the http.server name
    if self.server.verbose:
      super().log_message(format, *args)


class ViewerServer(http.server.ThreadingHTTPServer):
  """Serves `data` on (host, port); port 0 picks a free one (`url` tells which)."""

  daemon_threads = True

  def __init__(self, data: ViewerData, host: str = "127.0.0.1", port: int = 0, verbose=False):
    if ":" in host:  # an IPv6 address such as ::1
      self.address_family = socket.AF_INET6
    super().__init__((host, port), Handler)
    self.data, self.verbose, self.files = data, verbose, static_files()

  @property
  def url(self) -> str:
    host, port = self.server_address[:2]
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"

  def start(self) -> threading.Thread:
    """Serves in a daemon thread (tests, benchmarks); `shutdown()` stops it."""
    thread = threading.Thread(target=self.serve_forever, daemon=True)
    thread.start()
    return thread
