"""The console in a real browser over a large read model: 50 hospitals and 200 jobs, served by
a running ledger; one heartbeat through the bus updates the open page without a reload."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from arcflare.bus import connect
from arcflare.contracts import events as e
from arcflare.contracts.envelope import Envelope
from arcflare.ledger.bootstrap import PORT_FILE, bootstrap
from arcflare.ledger.settings import LedgerSettings
from arcflare.trust.local import ensure_local_identities

from tests.browser.chromium import chromium, mark_loaded, not_reloaded, open_page, screenshot
from tests.support.fleet import OWNER, fleet_stream, load_read_model
from tests.support.signing import send_as_authors

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]
FED = "big-fleet"


@pytest.fixture(scope="module")
def ledger(tmp_path_factory) -> Iterator[tuple[str, LedgerSettings]]:
    data = tmp_path_factory.mktemp("fleet") / "data"
    ensure_local_identities(data, operators=((OWNER, "consortium"),))
    load_read_model(data / "ledger.db", fleet_stream(FED, sites=50, jobs=200))
    settings = LedgerSettings(data_dir=data)
    service = bootstrap(settings)
    service.start()
    try:
        port_file = data / "run" / PORT_FILE
        for _ in range(200):
            if port_file.exists():
                break
            service.stopping.wait(0.05)
        yield f"http://127.0.0.1:{port_file.read_text()}", settings
    finally:
        service.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator:
    with chromium(tmp_path_factory.mktemp("profile")) as context:
        yield context


@pytest.fixture
def page(browser) -> Iterator:
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    page.close()
    assert errors == [], f"the page raised: {errors}"


def cells(page, selector: str) -> list[str]:
    return page.locator(selector).all_inner_texts()


def test_the_overview_sums_up_the_fleet(ledger, page, request) -> None:
    url, _ = ledger

    open_page(page, f"{url}/console/")

    row = page.locator(f'#federations tr[data-key="{FED}"] td').all_inner_texts()
    assert row[3:8] == ["50", "40", "5", "5", "0 / 200"]
    screenshot(page, request, "overview")


def test_the_federation_page_lists_every_hospital_and_job(ledger, page, request) -> None:
    url, _ = ledger

    open_page(page, f"{url}/console/federations/{FED}")

    assert page.locator("#sites tr").count() == 50
    assert page.locator("#jobs tr").count() == 25  # the newest; the rest on request
    assert page.locator("#jobs tr:first-child").get_attribute("data-key") == "job-0199"
    assert cells(page, "#state-filter button") == ["40 up", "5 degraded", "5 down"]
    # the hospitals that need a look come first
    assert cells(page, "#sites tr:first-child td:nth-child(3) .chip") == ["down"]
    screenshot(page, request, "federation")
    page.fill("#site-filter", "crashed")
    assert page.locator("#sites tr").count() == 5
    assert "q=crashed" in page.url
    page.click("#all-jobs")
    assert page.locator("#jobs tr").count() == 200


def test_a_job_page_charts_each_metric_per_site_and_globally(ledger, page, request) -> None:
    url, _ = ledger

    open_page(page, f"{url}/console/federations/{FED}/jobs/job-0007")

    charts = page.locator("figure.chart")
    assert sorted(charts.evaluate_all("fs => fs.map(f => f.dataset.metric)")) == [
        "accuracy", "train_accuracy"]
    series = page.locator('figure[data-metric="accuracy"] g.series')
    assert series.count() == 6  # five hospitals and the global line
    assert set(series.evaluate_all("gs => gs.map(g => g.dataset.points)")) == {"3"}
    assert page.locator("#model a").get_attribute("href").endswith(
        "/#/models/fedavg-model/versions/7")
    screenshot(page, request, "job")


def test_a_heartbeat_on_the_bus_updates_the_open_page(ledger, page, request) -> None:
    url, settings = ledger
    open_page(page, f"{url}/console/federations/{FED}")
    mark_loaded(page)
    row = page.locator('#sites tr[data-key="hospital-001"]')
    assert "up" in row.inner_text()

    beat = Envelope.wrap(e.SiteHeartbeat(federation=FED, site="hospital-001", status="crashed",
                                         diagnosis="The NVFlare client process exited."))
    with connect(settings) as bus:
        send_as_authors(bus, settings.data_dir, [beat])

    page.wait_for_function(
        """() => { const r = document.querySelector('#sites tr[data-key="hospital-001"]');
                   return r && r.innerText.includes('The NVFlare client process exited.'); }""",
        timeout=15_000)
    assert "down" in row.inner_text() and not_reloaded(page)
    screenshot(page, request, "federation-after-heartbeat")


def test_site_alerts_and_audit_pages_read_well(ledger, page, request) -> None:
    url, _ = ledger

    open_page(page, f"{url}/console/federations/{FED}/sites/hospital-010")
    assert cells(page, "#history tr td:nth-child(2)") == ["crashed", "starting"]
    screenshot(page, request, "site")
    open_page(page, f"{url}/console/alerts")
    assert page.locator("#rows tr").count() == 5
    screenshot(page, request, "alerts")
    open_page(page, f"{url}/console/audit?command_type=SubmitJob")

    trail = page.request.get(f"{url}/audit?limit=1000").json()
    submitted = [r for r in trail if r.get("command_type") == "SubmitJob"]
    assert len(submitted) >= 200  # a SubmitJob per job
    assert page.locator("#rows tr").count() == len(submitted)
    assert page.locator("#row-count").inner_text() == f"{len(submitted)} of {len(trail)}"
    screenshot(page, request, "audit")


def test_every_page_is_built_from_the_ledger_alone(ledger, page) -> None:
    url, _ = ledger
    origins: set[str] = set()
    page.on("request", lambda r: origins.add(r.url.split("/")[2]))

    open_page(page, f"{url}/console/federations/{FED}/jobs/job-0001")

    assert origins == {url.split("/")[2]}
