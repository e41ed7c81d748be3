"""The viewer in a real browser: headless system Chromium driven by Playwright, against the tiny
trained 3D and 2D runs (live server) and a static export opened from file://."""

import io
import pathlib
import subprocess
import sys
import urllib.parse

import pytest
from browser_support import chromium, launch
from PIL import Image
from viewer_support import FEATUREVIS_STAGE, live

pytestmark = pytest.mark.xdist_group("viewer")
TIMEOUT = 120_000  # ms; a first request compiles on a loaded 2-core machine


@pytest.fixture(scope="module")
def browser():
  executable = chromium()
  from playwright.sync_api import sync_playwright

  with sync_playwright() as p:
    b = launch(p, executable)
    yield b
    b.close()


def _open(browser, url: str):
  """A page at `url` that records every request and page error."""
  page = browser.new_page(viewport={"width": 1400, "height": 1000})
  page.set_default_timeout(TIMEOUT)
  page.requests, page.errors = [], []
  page.on("request", lambda r: page.requests.append(r.url))
  page.on("pageerror", lambda e: page.errors.append(str(e)))
  page.goto(url)
  page.wait_for_selector("body[data-ready='1']")
  return page


def _pick(page, item: str) -> None:
  page.click(f"#thumbs figure[data-item='{item}']")
  page.wait_for_selector(f"body[data-item='{item}']")


def _panels(page) -> dict[str, int]:
  """{stage: number of panel canvases} of every stage section that is ready."""
  return page.evaluate(
    """() => Object.fromEntries([...document.querySelectorAll('section.stage')].map(s => [
      s.dataset.stage,
      s.dataset.ready === '1' ? s.querySelectorAll('canvas.panel').length : 0,
    ]))"""
  )


def _pixels(page, selector: str) -> str:
  return page.evaluate(f"() => document.querySelector({selector!r}).toDataURL()")


def _expected_panels(page) -> dict[str, int]:
  return page.evaluate(
    """() => Object.fromEntries(BV.app.manifest.meta.stages.map(s =>
      [s.name, s.kind === 'spatial' ? s.shape[s.shape.length - 1] : 1]))"""
  )


def _overlay(page, method: str) -> str:
  page.select_option("#method", method)
  page.click("#show-attr")
  page.wait_for_selector("#attr-view[data-ready='1']")
  return _pixels(page, "#attr-canvas")


def _local_only(page, prefix: str) -> None:
  outside = [u for u in page.requests if not (u.startswith(prefix) or u.startswith("data:"))]
  assert not outside, outside  # no CDN, nothing from the network
  assert not page.errors, page.errors


def test_3d_run_in_the_browser(browser, trained_run, tmp_path):
  server = live(str(trained_run))
  page = _open(browser, server.url)
  stages = page.evaluate("BV.app.manifest.meta.stages")
  nodes = page.locator("#graph g.node").count()
  edges = page.locator("#graph path.edge").count()
  assert nodes == len(stages) and edges == sum(len(s["sources"]) for s in stages)
  assert page.locator("#thumbs figure").count() == 12
  _pick(page, "test:2")
  assert _panels(page) == _expected_panels(page)  # every stage shows all its channels
  rows = page.locator("#topk .topk-row").count()
  assert rows == 10 and "%" in page.inner_text("#topk")

  before = {s: _pixels(page, f"#stage-{s} canvas.panel") for s in ("input", "block1")}
  renders = page.get_attribute("#stage-block1", "data-renders")
  page.fill("#slice", "120")  # the slider moves every 3D panel to another slice
  assert page.get_attribute("#stage-block1", "data-renders") != renders
  after = {s: _pixels(page, f"#stage-{s} canvas.panel") for s in ("input", "block1")}
  assert all(before[s] != after[s] for s in before), "the slice slider changed nothing"
  assert "D = 3 of 32" in page.inner_text("#slice-info")
  page.select_option("#mode", "mip2")  # a MIP along W: a [D, H] picture
  shape = page.evaluate(
    "[...document.querySelectorAll('#stage-input canvas.panel')].map(c => [c.height, c.width])[0]"
  )
  assert shape == [32, 16]
  page.select_option("#mode", "slice")

  overlay = _overlay(page, "grad_cam")
  assert "grad_cam for class" in page.inner_text("#attr-info")
  _overlay(page, "vanilla_gradient")
  page.select_option("#sign", "negative")
  assert _pixels(page, "#attr-canvas") != overlay

  page.click("#stage-block1 canvas.panel >> nth=1")  # enlarge a panel
  assert page.is_visible("#modal") and "channel 1 of 4" in page.inner_text("#modal-title")
  page.click("#modal-close")
  assert not page.is_visible("#modal")

  fv = f"#stage-{FEATUREVIS_STAGE}"
  page.check(f"{fv} .fv-toggle input")
  page.wait_for_selector(f"{fv} canvas.panel.fv")
  assert page.locator(f"{fv} canvas.panel.fv").count() == 2  # the two cached channels

  with page.expect_download() as download:
    page.click("#stage-block1 button.export-png")
  png = Image.open(download.value.path())
  assert png.format == "PNG" and png.width > 64
  href = page.get_attribute("#stage-block1 a.export-tiff", "href")
  assert "api/tiff?" in href and "stage=block1" in href

  shot = tmp_path / "viewer_3d.png"
  page.screenshot(path=str(shot), full_page=True)
  picture = Image.open(io.BytesIO(shot.read_bytes())).convert("RGB")
  assert picture.height > 1000 and len(picture.getcolors(1 << 20) or range(1 << 20)) > 200
  _local_only(page, server.url)
  page.close()


def test_2d_run_in_the_browser(browser, trained_run_2d):
  server = live(str(trained_run_2d))
  page = _open(browser, server.url)
  assert not page.is_visible("#slice-box") and not page.is_visible("#mode-box")
  first = page.get_attribute("#thumbs figure >> nth=0", "data-item")
  _pick(page, first)
  assert _panels(page) == _expected_panels(page)
  assert page.evaluate("BV.app.itemBlob.arrays.image.shape") == [48, 48, 3]
  classes = page.evaluate("BV.app.manifest.meta.classes.length")
  assert page.locator("#topk .topk-row").count() == min(10, classes)
  page.click("#topk .topk-row >> nth=1")  # explain the second most probable class
  page.wait_for_selector("#attr-view[data-ready='1']")
  second = page.inner_text("#topk .topk-row >> nth=1 >> .cls")
  assert f"for class {second}" in page.inner_text("#attr-info")
  _overlay(page, "integrated_gradients")
  page.click("#noise")
  page.wait_for_selector("body[data-item='noise:0']")
  assert "noise input" in page.inner_text("#chosen")
  _local_only(page, server.url)
  page.close()


def test_static_export_opens_from_disk(browser, trained_run, tmp_path):
  site = tmp_path / "site"
  out = subprocess.run(
    [
      sys.executable,
      "-m",
      "bugnist_jax.view",
      f"--workdir={trained_run}",
      f"--export={site}",
      "--items=test:0,test:5,noise:3",
      "--method=grad_cam",
    ],
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert out.returncode == 0, out.stderr[-3000:]
  assert f"wrote the viewer of 3 items: {(site / 'index.html').as_uri()}" in out.stdout
  page = _open(browser, (site / "index.html").as_uri())
  assert page.locator("#thumbs figure").count() == 3 and not page.is_visible("#noise-row")
  _pick(page, "test:5")
  assert _panels(page) == _expected_panels(page)
  before = _pixels(page, "#stage-input canvas.panel")
  page.fill("#slice", "900")
  assert _pixels(page, "#stage-input canvas.panel") != before
  assert page.evaluate("[...document.querySelectorAll('#method option')].map(o => o.value)") == [
    "grad_cam"
  ]
  _overlay(page, "grad_cam")
  href = page.get_attribute("#stage-block1 a.export-tiff", "href")
  assert (site / urllib.parse.unquote(href)).is_file()
  _pick(page, "noise:3")
  assert _panels(page) == _expected_panels(page)
  _local_only(page, pathlib.Path(site).as_uri())
  page.close()
