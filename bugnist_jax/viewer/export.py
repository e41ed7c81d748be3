"""A static copy of the viewer for chosen items: opens from disk (file://) with no server.

Layout of the folder:

    index.html, static/        the page and its scripts, as the server sends them
    data/static.js             `window.BV_STATIC = true`
    data/b/<key>.js            one answer per file, `BV.deliver("<key>", "<base64 blob>")`:
                               scripts, because a page opened from disk may load scripts but
                               not fetch files; `<key>` is `data.static_key(kind, params)`
    tiff/<key>.tif             ImageJ TIFFs of the 3D stages, per item

It holds the manifest (with the exported methods only), the item list, and per item its input,
every stage's panels and each method's maps for the predicted class.
"""

import base64
import pathlib
import shutil
from collections.abc import Sequence

import numpy as np

from bugnist_jax.errors import UserError
from bugnist_jax.models.contract import SPATIAL
from bugnist_jax.viewer.data import PAGE_SIZE, ViewerData, ViewerError, method_table, static_key
from bugnist_jax.viewer.server import static_files

EXPORTED = "exported"  # the one "split" of a static export


def export_site(
  data: ViewerData,
  out_dir: str | pathlib.Path,
  items: Sequence[str],
  methods: Sequence[str],
  tiff: bool = True,
) -> pathlib.Path:
  """Writes the static viewer of `items` with `methods` to `out_dir`; returns index.html.

  A non-empty `out_dir` that is not a viewer export is refused (UserError), an old export in
  it replaced.
  """
  out = pathlib.Path(out_dir)
  if not items or len(items) > PAGE_SIZE:
    raise UserError(f"--items: give 1 to {PAGE_SIZE} items to export, not {len(items)}")
  if out.is_dir() and any(out.iterdir()) and not (out / "data" / "static.js").is_file():
    raise UserError(f"--export: {out} is not empty and holds no viewer export; give a new folder")
  if out.exists() and not out.is_dir():
    raise UserError(f"--export: {out} is a file")
  for sub in ("data", "static", "tiff"):
    shutil.rmtree(out / sub, ignore_errors=True)
  (out / "data" / "b").mkdir(parents=True)

  def put(kind: str, values: tuple, body: bytes) -> None:
    key = static_key(kind, values)
    text = base64.b64encode(body).decode("ascii")
    (out / "data" / "b" / f"{key}.js").write_text(f'BV.deliver("{key}", "{text}");\n')

  try:
    resolved = [data.resolve(item) for item in items]
  except ViewerError as e:
    raise UserError(f"--items: {e.message}") from None
  images = np.stack([it.image for it in resolved])
  labels = np.asarray([it.label for it in resolved])
  meta = {"split": EXPORTED, "page": 0}
  put("items", (EXPORTED, 0), data.item_list(list(items), images, labels, meta))
  three_d = len(data.run.model.input_shape) == 3
  for item in items:
    put("item", (item,), data.item(item))
    for stage in data.panels.stages:
      put("stage", (item, stage.name), data.stage(item, stage.name))
      if tiff and three_d and stage.kind == SPATIAL:
        path = out / "tiff" / f"{static_key('tiff', (item, stage.name))}.tif"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data.tiff(item, stage.name))
    for method in methods:
      put("attribution", (item, method, "predicted"), data.attribution(item, method, "predicted"))
  for stage in data.featurevis_caches:
    put("featurevis", (stage,), data.featurevis(stage))
  exported = {
    "splits": {EXPORTED: len(items)},
    "methods": [m for m in method_table() if m["name"] in methods],
    "targets": ["predicted"],
    "tiff": bool(tiff and three_d),
  }
  put("manifest", (), data.manifest(exported))
  (out / "static").mkdir()
  for name, path in static_files().items():
    shutil.copyfile(path, out / ("index.html" if name == "index.html" else f"static/{name}"))
  (out / "data" / "static.js").write_text("window.BV_STATIC = true;\n")
  return out / "index.html"
