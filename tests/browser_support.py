"""The system Chromium for browser tests: its flags, and Playwright driving it (no browser
download: Playwright only drives the Chromium that Debian's package installs)."""

import os
import shutil

import pytest

# Flags that work on the project's machines (no network, no sandbox as root, no GPU).
CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
]


def chromium() -> str:
  """The system Chromium, or skip (fail where BUGNIST_REQUIRE_BROWSER is set, as in CI)."""
  path = shutil.which("chromium") or shutil.which("chromium-browser")
  try:
    import playwright.sync_api  # noqa: F401
  except ImportError:
    path = None
  if path is None:
    message = "chromium and the playwright package are needed for the browser tests"
    if os.environ.get("BUGNIST_REQUIRE_BROWSER"):
      pytest.fail(message)
    pytest.skip(message)
  return path


def launch(playwright, executable: str):
  """Headless system Chromium (no browser download: Playwright only drives it)."""
  return playwright.chromium.launch(
    executable_path=executable, headless=True, args=CHROMIUM_ARGS, chromium_sandbox=False
  )
