"""What the console reads: the JSON it renders, the live stream, its assets, the OpenAPI
document — against a running ledger fed through the bus."""
from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from arcflare.contracts import events as e
from arcflare.ledger.settings import LedgerSettings
from arcflare.ledger.web.console import version
from arcflare.runtime import Service

from .ledger_service import get, publish, serving

FED = "hospitals"


@pytest.fixture
def settings(tmp_path: Path) -> LedgerSettings:
    return LedgerSettings(data_dir=tmp_path / "data", ledger_live_interval_s=0.05)


@pytest.fixture
def ledger(settings, events) -> Iterator[tuple[Service, int]]:
    publish(settings, events)
    with serving(settings) as running:
        yield running


def test_the_overview_sums_up_each_federation(ledger) -> None:
    _, port = ledger

    code, _, overview = get(port, "/overview")

    assert code == 200
    [line] = overview
    assert line["name"] == FED and line["site_count"] == 2
    # north-1 connected; south-1 never deployed (deploy_failed, no health)
    assert line["sites"] == {"up": 1, "degraded": 0, "down": 1, "unknown": 0}
    assert (line["jobs_running"], line["jobs_total"]) == (0, 2)
    assert line["nearest_cert_expiry"].startswith("2027-11-24")  # T0 + 360 days


def test_a_federation_names_each_site_state_and_nvflare_version(ledger, settings,
                                                                enveloped) -> None:
    _, port = ledger
    publish(settings, [enveloped(e.FederationStatusObserved(
        federation=FED, server_status="started",
        clients=[e.ClientView(name="north-1", nvflare_version="2.9.0")]), None, 90)])

    sites = eventually(lambda: {s["site"]: s for s in get(port, f"/federations/{FED}")[2]["sites"]},
                       lambda found: found["north-1"]["nvflare_version"] is not None)

    assert (sites["north-1"]["state"], sites["north-1"]["nvflare_version"]) == ("up", "2.9.0")
    assert (sites["south-1"]["state"], sites["south-1"]["nvflare_version"]) == ("down", None)


def test_a_job_has_a_series_per_metric_with_a_global_line(ledger) -> None:
    _, port = ledger

    _, _, series = get(port, f"/federations/{FED}/jobs/job-1/metrics")

    accuracy = series["metrics"]["accuracy"]
    # three rounds arrived out of order in two messages; each keeps its own value
    assert accuracy["sites"] == {"north-1": [[1, 0.5], [2, 0.7], [3, 0.9]]}
    assert accuracy["global"] == [[1, 0.5], [2, 0.7], [3, 0.9]] and accuracy["global_is_mean"]
    assert series["rounds"] == 4


def test_a_site_has_its_health_history_newest_first(ledger) -> None:
    _, port = ledger

    _, _, site = get(port, f"/federations/{FED}/sites/north-1")

    assert [h["status"] for h in site["health_history"]] == ["connected", "starting"]
    assert site["health_history"][0]["previous"] == "starting"
    assert {j["job_id"] for j in site["jobs"]} == {"job-1", "cmd-submit-2"}


def test_bad_parameters_get_one_sentence(ledger) -> None:
    _, port = ledger

    code, _, body = get(port, "/alerts?limit=0")

    assert code == 400 and body["error"].startswith("limit: Input should be greater than")


def test_the_openapi_document_lists_every_json_route(ledger) -> None:
    _, port = ledger

    _, _, document = get(port, "/openapi.json")

    assert {"/federations", "/federations/{federation}", "/overview", "/audit", "/alerts",
            "/federations/{federation}/jobs/{job_id}/metrics", "/live",
            "/federations/{federation}/sites/{site}/logs"} <= set(document["paths"])


def test_console_pages_and_assets_come_from_the_ledger_itself(ledger) -> None:
    _, port = ledger

    code, headers, page = get(port, f"/console/federations/{FED}")
    release = version()
    script = get(port, f"/console/static/{release}/app.js")
    stale = get(port, "/console/static/0ld/app.js")

    assert code == 200 and '<main id="page">' in page
    assert f'src="/console/static/{release}/app.js"' in page
    assert "default-src 'self'" in headers["content-security-policy"]
    assert script[0] == 200 and script[1]["content-type"].startswith("text/javascript")
    assert "immutable" in script[1]["cache-control"]
    # an asset asked for under another release's URL is served, but not kept
    assert stale[0] == 200 and stale[1]["cache-control"] == "no-cache"
    assert get(port, f"/console/static/{release}/secrets.txt")[0] == 404


def test_the_live_stream_names_what_was_just_projected(ledger, settings, enveloped) -> None:
    _, port = ledger
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/live")
    stream = connection.getresponse()
    assert stream.getheader("content-type").startswith("text/event-stream")
    first = _next_event(stream)
    assert first[0] == "hello"

    heartbeat = enveloped(e.SiteHeartbeat(federation=FED, site="south-1", status="crashed",
                                          diagnosis="The client exited."), None, 99)
    threading.Thread(target=publish, args=(settings, [heartbeat])).start()
    kind, changes = _next_event(stream)
    connection.close()

    assert kind == "changes"
    assert {"type": "SiteHeartbeat", "federation": FED, "site": "south-1", "job_id": None,
            "telemetry": True} in changes


def eventually(read, done, timeout: float = 10.0):
    """`read()` until `done(value)`: the running ledger projects on its own threads."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def _next_event(stream: http.client.HTTPResponse) -> tuple[str, object]:
    kind, data = None, None
    while True:
        line = stream.readline().decode().rstrip("\n")
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            data = json.loads(line[6:])
        elif line == "" and kind:
            return kind, data
