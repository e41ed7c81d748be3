"""A layer-by-layer network viewer in the browser (DeepVisionVR's walk through a trained CNN as
a web page), for every staged model, 2D and 3D; `python -m bugnist_jax.view`.

- `panels`: per-stage compiled summaries (int8 panels, one scale per layer, histograms) and the
  graph, from the model contract;
- `data`: `ViewerData`, the answers to the page's requests for a run (items, stages,
  attribution, feature visualisations, TIFFs), as blobs (`blob`: the wire format);
- `server`: the HTTP server; `export`: the static site; `featurevis`: the cache format that
  feature visualisation writes and the viewer reads; `app`: `ViewRequest` and `view`;
- `static/`: the page (plain JavaScript and CSS, no build step, nothing from the network).
"""

from bugnist_jax.viewer.app import ViewRequest, open_viewer, view
from bugnist_jax.viewer.data import KINDS, ViewerData, ViewerError
from bugnist_jax.viewer.export import export_site
from bugnist_jax.viewer.featurevis import read_cache, write_cache
from bugnist_jax.viewer.panels import Panels
from bugnist_jax.viewer.server import ViewerServer

__all__ = [
  "KINDS",
  "Panels",
  "ViewRequest",
  "ViewerData",
  "ViewerError",
  "ViewerServer",
  "export_site",
  "open_viewer",
  "read_cache",
  "view",
  "write_cache",
]
