"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright for Python: no browser
download, a fresh profile per run, the flags this kind of machine needs."""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: a laptop screen
VIEWPORT = {"width": 1440, "height": 900}


@contextmanager
def chromium(profile: Path) -> Iterator:
    """A browser context on a fresh profile; closed (and the browser with it) on exit."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=FLAGS,
            viewport=VIEWPORT)
        try:
            yield context
        finally:
            context.close()


def open_page(page, url: str, timeout_ms: float = 15_000) -> None:
    """Load a console page and wait until it rendered its JSON once and follows the ledger's
    live stream."""
    page.goto(url)
    page.wait_for_selector("main[data-rendered]", timeout=timeout_ms)
    page.wait_for_selector('#live[data-state="live"]', timeout=timeout_ms)


def mark_loaded(page) -> None:
    """A token only this very page load holds: still there later means no reload happened."""
    page.evaluate("window.__loadToken = 'loaded-once'")


def not_reloaded(page) -> bool:
    return page.evaluate("window.__loadToken") == "loaded-once"


def screenshot(page, request: pytest.FixtureRequest, name: str) -> Path:
    """What a laptop screen shows, saved under test-output/browser/<test>/<name>.png."""
    folder = ROOT / "test-output" / "browser" / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path))
    return path
