"""The console in a real browser while a demo-sized federation runs: real NVFlare, the whole
local stack, one `arcflare demo --keep` in the background.

One test, in the order an operator would look: three hospitals come up healthy; the job's
chart gains a point per round with no reload; a hospital whose client is SIGKILLed turns
unhealthy, with its diagnosis, within two heartbeat intervals; the audit lists the demo's
commands. A screenshot of each page lands in test-output/browser/<test>/.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from arcflare.deployer.adapters.processes import find_running
from arcflare.site_agent.settings import SiteAgentSettings

from tests.browser.chromium import chromium, mark_loaded, not_reloaded, open_page, screenshot
from tests.e2e.stack import ARCFLARE, ROOT, local_down, running_under

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.nvflare,
              pytest.mark.timeout(600)]
FED, ROUNDS = "hospitals-3", 5
VICTIM = "st-marys-london"
HEARTBEAT_S = SiteAgentSettings.model_fields["heartbeat_interval_s"].default
#: records every point count the accuracy chart's global line shows, as the page changes
WATCH_CHART = """() => {
  window.__points = [];
  const note = () => {
    const line = document.querySelector('figure[data-metric="accuracy"] g.global');
    const n = line ? Number(line.dataset.points) : 0;
    if (n && window.__points[window.__points.length - 1] !== n) window.__points.push(n);
  };
  note();
  new MutationObserver(note).observe(document.getElementById("charts"),
                                     {childList: true, subtree: true});
}"""


def wait_for_file(path: Path, demo: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert demo.poll() is None, f"the demo ended early ({demo.returncode})"
        assert time.monotonic() < deadline, f"{path} did not appear within {timeout:.0f} s"
        time.sleep(0.5)


def text_in_row(page, table: str, key: str, *needles: str, timeout_s: float) -> None:
    """Wait until the row `key` of table `table` shows every needle."""
    page.wait_for_function(
        """([table, key, needles]) => {
             const row = document.querySelector(`#${table} tr[data-key="${key}"]`);
             return !!row && needles.every((n) => row.innerText.includes(n)); }""",
        arg=[table, key, list(needles)], timeout=timeout_s * 1000)


def test_an_operator_watches_the_demo_in_the_console(tmp_path, request) -> None:
    data = tmp_path / "data"
    output = tmp_path / "demo.out"
    with open(output, "w") as out:
        demo = subprocess.Popen(
            [ARCFLARE, "demo", "--data-dir", str(data), "--sites", "3", "--rounds",
             str(ROUNDS), "--keep", "--json"], stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, cwd=ROOT)
    try:
        wait_for_file(data / "run" / "ledger.port", demo, timeout=180)
        url = f"http://127.0.0.1:{(data / 'run' / 'ledger.port').read_text()}"
        with chromium(tmp_path / "profile") as browser:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))

            # the overview: three healthy hospitals, as soon as they are
            open_page(page, f"{url}/console/")
            text_in_row(page, "federations", FED, "running", timeout_s=240)
            page.wait_for_function(
                f"""() => {{ const cells = document.querySelectorAll(
                      '#federations tr[data-key="{FED}"] td');
                    return cells.length && cells[4].innerText === "3"; }}""", timeout=240_000)
            up, degraded, down = page.locator(
                f'#federations tr[data-key="{FED}"] td').all_inner_texts()[4:7]
            assert (up, degraded, down) == ("3", "0", "0")
            screenshot(page, request, "overview")

            # the job: open it as soon as it shows up, then watch its chart grow
            open_page(page, f"{url}/console/federations/{FED}")
            page.wait_for_selector("#jobs tr[data-key]", timeout=120_000)
            job_id = page.locator("#jobs tr[data-key]").first.get_attribute("data-key")
            open_page(page, f"{url}/console/federations/{FED}/jobs/{job_id}")
            mark_loaded(page)
            page.evaluate(WATCH_CHART)
            assert demo.wait(timeout=420) == 0, output.read_text()[-3000:]
            assert f"operator console: {url}/console/" in output.read_text()
            page.wait_for_function(
                f"""() => window.__points[window.__points.length - 1] === {ROUNDS}""",
                timeout=30_000)
            seen = page.evaluate("window.__points")
            assert not_reloaded(page)
            assert len(seen) >= 3 and seen == sorted(set(seen)) and seen[-1] == ROUNDS, seen
            per_site = page.locator('figure[data-metric="accuracy"] g.series:not(.global)')
            assert per_site.count() == 3
            assert set(per_site.evaluate_all("gs => gs.map(g => g.dataset.points)")) == {
                str(ROUNDS)}
            page.wait_for_selector("#model a", timeout=30_000)
            screenshot(page, request, "job")

            # a hospital's client dies: its row turns down, with the reason, by itself
            open_page(page, f"{url}/console/federations/{FED}")
            mark_loaded(page)
            screenshot(page, request, "federation")
            client = find_running(data / "sites" / FED / VICTIM)
            assert client is not None, "the hospital's NVFlare client is not running"
            os.killpg(client.pgid, signal.SIGKILL)
            text_in_row(page, "sites", VICTIM, "down", timeout_s=2 * HEARTBEAT_S)
            diagnosis = page.locator(f'#sites tr[data-key="{VICTIM}"] td.diagnosis')
            assert diagnosis.inner_text().strip() and not_reloaded(page)
            screenshot(page, request, "federation-after-kill")
            open_page(page, f"{url}/console/federations/{FED}/sites/{VICTIM}")
            screenshot(page, request, "site")

            # the audit trail: every command the demo sent
            open_page(page, f"{url}/console/audit?federation={FED}")
            commands = {c.split()[0] for c in
                        page.locator("#rows tr td:nth-child(3)").all_inner_texts()}
            assert commands >= {"CreateFederation", "RefreshFederationStatus", "SubmitJob"}
            screenshot(page, request, "audit")
            open_page(page, f"{url}/console/alerts")
            screenshot(page, request, "alerts")
            assert errors == [], errors
    finally:
        if demo.poll() is None:
            demo.kill()
        local_down(data)
        assert running_under(data) == [], "processes left after local down"
