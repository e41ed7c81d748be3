"""`view(workdir, request)`: serve the viewer for a run, or write its static export."""

import dataclasses
import pathlib

from bugnist_jax.attribution import Options, check_methods
from bugnist_jax.errors import UserError
from bugnist_jax.log import say
from bugnist_jax.options import option, validate
from bugnist_jax.runs import Run
from bugnist_jax.viewer.data import NOISE, ViewerData
from bugnist_jax.viewer.export import export_site
from bugnist_jax.viewer.server import ViewerServer

LOCAL = ("127.0.0.1", "localhost", "::1")


@dataclasses.dataclass(frozen=True)
class ViewRequest:
  """How to show a run; `options` are the attribution methods' knobs."""

  host: str = option("127.0.0.1", "Address to serve on (the default: this machine only).")
  port: int = option(8765, "Port to serve on (0: any free port).", min=0)
  export: str | None = option(
    None, "Write a static viewer of --items to this folder (opens from disk) instead of serving."
  )
  items: tuple[str, ...] = option(
    (), f"Items to export: <split>:<index> or {NOISE}:<seed> (default: --num_items of test)."
  )
  num_items: int = option(4, "Test items to export when --items is empty.", min=1)
  method: tuple[str, ...] = option(
    ("grad_cam", "vanilla_gradient"), "Attribution methods to export (the server offers all)."
  )
  tiff: bool = option(True, "Export ImageJ TIFFs of every 3D stage.")
  step: int | None = option(None, "Checkpoint step (default: best by validation).", min=0)
  data_root: str | None = option(None, "Data folder, if it moved since training.")
  log_requests: bool = option(False, "Print a line per request.")
  options: Options = dataclasses.field(default_factory=Options)


def open_viewer(workdir, request: ViewRequest) -> ViewerData:
  """The run's ViewerData, with the stage functions compiled (on a noise input)."""
  run = Run.open(workdir, request.step, request.data_root)
  data = ViewerData(run, request.options)
  data.answer("stage", {"item": f"{NOISE}:0", "stage": data.panels.stages[-1].name})
  return data


def view(workdir, request: ViewRequest | None = None) -> pathlib.Path | None:
  """Serves the viewer until interrupted (prints its URL), or, with `export`, writes the
  static viewer and returns its index.html."""
  request = validate(request or ViewRequest())
  if request.port > 65535:
    raise UserError(f"--port: {request.port} is not a port (0 to 65535)")
  methods = check_methods(request.method)
  if request.export:
    data = open_viewer(workdir, request)
    items = request.items or tuple(
      f"test:{i}" for i in range(min(request.num_items, len(data.run.split("test"))))
    )
    index = export_site(data, request.export, items, methods, request.tiff)
    print(f"wrote the viewer of {len(items)} items: {index.resolve().as_uri()}", flush=True)
    return index
  data = open_viewer(workdir, request)
  try:
    server = ViewerServer(data, request.host, request.port, request.log_requests)
  except OSError as e:
    raise UserError(f"--port: cannot serve on {request.host}:{request.port} ({e})") from None
  if request.host not in LOCAL:
    say(f"serving on {request.host}: reachable from other machines, with no authentication")
  print(f"viewer of {pathlib.Path(workdir)}: {server.url}", flush=True)
  try:
    server.serve_forever()
  except KeyboardInterrupt:
    say("stopped")
  finally:
    server.server_close()
  return None
