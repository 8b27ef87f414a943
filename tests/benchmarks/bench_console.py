"""Console: how fast the federation page shows 50 hospitals and 200 jobs, how soon an event on
the bus shows in an open page, and what serving the console costs the ledger in memory.

A real ledger process (python -m arcflare.ledger) over a read model of 50 sites and 200 jobs,
the embedded bus, and Debian's Chromium driven by Playwright.
- first paint: navigation start to the page's data painted (User Timing mark
  `arcflare:rendered`, set in the frame after the first render), on repeated loads;
- event to DOM: a heartbeat with a new diagnosis, signed as the site's agent, sent on the bus;
  the page's clock when the diagnosis shows, minus the time it was sent (one machine);
- memory: the ledger's RSS after the JSON API alone was read (what the CLI does), then after
  the console was used — every page opened, the live stream following 40 events.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil
from arcflare.bus import connect
from arcflare.contracts import events as e
from arcflare.contracts.envelope import Envelope
from arcflare.runtime.settings import Settings
from arcflare.trust.local import ensure_local_identities

from tests.browser.chromium import chromium, open_page
from tests.support.fleet import OWNER, fleet_stream, load_read_model
from tests.support.signing import send_as_authors

FED, SITES, JOBS = "bench-fleet", 50, 200
LOADS, EVENTS = 15, 20


def run(results) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        ensure_local_identities(data, operators=((OWNER, "consortium"),))
        load_read_model(data / "ledger.db", fleet_stream(FED, sites=SITES, jobs=JOBS))
        ledger = _start_ledger(data)
        try:
            url = f"http://127.0.0.1:{_port(data, ledger)}"
            for path in ("/federations", f"/federations/{FED}", "/audit", "/alerts"):
                for _ in range(20):
                    urllib.request.urlopen(url + path, timeout=10).read()
            api_only = psutil.Process(ledger.pid).memory_info().rss
            with chromium(Path(tmp) / "profile") as browser:
                page = browser.new_page()
                paint = _first_paint_ms(page, f"{url}/console/federations/{FED}")
                latency = _event_to_dom_ms(page, data)
                for path in ("/console/", f"/console/federations/{FED}/jobs/job-0001",
                             f"/console/federations/{FED}/sites/hospital-002",
                             "/console/alerts", "/console/audit"):
                    open_page(page, url + path)
                open_page(page, f"{url}/console/federations/{FED}")
                _send_heartbeats(data, 40, "memory")
                time.sleep(2)
                with_console = psutil.Process(ledger.pid).memory_info().rss
        finally:
            ledger.terminate()
            ledger.wait(timeout=30)
    results.add(f"console.first_paint_ms_p50_{SITES}_sites_{JOBS}_jobs",
                statistics.median(paint), "ms", target="<= 300")
    results.add("console.first_paint_ms_max", max(paint), "ms")
    results.add("console.event_to_dom_ms_p50", statistics.median(latency), "ms",
                target="<= 1000")
    results.add("console.event_to_dom_ms_max", max(latency), "ms")
    results.add("console.ledger_rss_mib_with_console", with_console / 2**20, "MiB",
                baseline=api_only / 2**20, target="<= 1.3", on="ratio",
                note="baseline: the ledger serving the JSON API only")


def _start_ledger(data: Path) -> subprocess.Popen:
    env = {**os.environ, "ARCFLARE_DATA_DIR": str(data), "ARCFLARE_LEDGER_PORT": "0",
           "ARCFLARE_LOG_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, "-m", "arcflare.ledger"], env=env, cwd=data,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)


def _port(data: Path, ledger: subprocess.Popen) -> int:
    port_file = data / "run" / "ledger.port"
    deadline = time.monotonic() + 60
    while not port_file.exists():
        if ledger.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the ledger did not start (exit {ledger.returncode})")
        time.sleep(0.1)
    return int(port_file.read_text())


def _first_paint_ms(page, url: str) -> list[float]:
    samples = []
    for _ in range(LOADS + 1):
        open_page(page, url)
        page.wait_for_function("() => performance.getEntriesByName('arcflare:rendered').length")
        samples.append(page.evaluate(
            "performance.getEntriesByName('arcflare:rendered')[0].startTime"))
    return samples[1:]  # the first load fills the browser's cache, as any first visit does


def _event_to_dom_ms(page, data: Path) -> list[float]:
    samples = []
    for i in range(EVENTS):
        marker = f"bench diagnosis {i} {time.time_ns()}"
        page.evaluate(
            """(marker) => {
                 window.__shownAt = null;
                 const sites = document.getElementById('sites');
                 new MutationObserver((_, observer) => {
                   if (sites.innerText.includes(marker)) {
                     window.__shownAt = Date.now();
                     observer.disconnect();
                   }
                 }).observe(sites, {childList: true, subtree: true, characterData: true});
               }""", marker)
        sent_ms = time.time() * 1000
        _send_heartbeats(data, 1, marker)
        page.wait_for_function("() => window.__shownAt !== null", timeout=30_000)
        samples.append(page.evaluate("window.__shownAt") - sent_ms)
        time.sleep(0.5)
    return samples


def _send_heartbeats(data: Path, count: int, diagnosis: str) -> None:
    beats = [Envelope.wrap(e.SiteHeartbeat(
        federation=FED, site=f"hospital-{1 + n % SITES:03d}", status="disconnected",
        diagnosis=diagnosis)) for n in range(count)]
    with connect(Settings(data_dir=data)) as bus:
        send_as_authors(bus, data, beats)
