"""The ledger as a service: events through the embedded bus, answers over its HTTP API."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from arcflare.contracts.envelope import Envelope
from arcflare.ledger.bootstrap import bootstrap
from arcflare.ledger.settings import LedgerSettings
from arcflare.runtime import Service

from .ledger_service import publish, serving

FED = "hospitals"


def get(port: int, path: str) -> tuple[int, object]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def settings(tmp_path: Path) -> LedgerSettings:
    return LedgerSettings(data_dir=tmp_path / "data", ledger_port=0, log_tails_per_site=3)


@pytest.fixture
def running(settings: LedgerSettings, events: list[Envelope]) -> Iterator[tuple[Service, int]]:
    publish(settings, events)
    with serving(settings) as answer:
        yield answer


def test_the_api_serves_the_read_model_of_events_from_the_bus(running) -> None:
    _, port = running

    code, federation = get(port, f"/federations/{FED}")

    assert code == 200
    sites = {s["site"]: s for s in federation["sites"]}
    assert sites["north-1"]["health"] == "connected"
    assert sites["north-1"]["server_view"] == "registered"
    assert sites["south-1"]["lifecycle"] == "deploy_failed"
    assert [j["status"] for j in federation["jobs"] if j["job_id"] == "job-1"] == [
        "FINISHED:COMPLETED"]


def test_the_api_serves_audit_alerts_jobs_and_logs(running) -> None:
    _, port = running

    _, trail = get(port, f"/audit?federation={FED}")
    _, alerts = get(port, "/alerts")
    _, job = get(port, f"/federations/{FED}/jobs/job-1")
    _, tails = get(port, f"/federations/{FED}/sites/north-1/logs")

    assert {"cmd-create", "cmd-stop", "cmd-deploy-south"} <= {r["command_id"] for r in trail}
    assert [a["rule"] for a in alerts] == ["deployment-failed"]
    assert job["history"][0]["status"] == "SUBMITTED"
    assert len(tails) == 3  # the retention cap from settings


def test_the_api_refuses_what_it_does_not_serve(running) -> None:
    _, port = running

    assert get(port, "/federations/nope")[0] == 404
    assert get(port, "/nowhere")[0] == 404
    assert get(port, "/audit?limit=lots")[0] == 400
    assert get(port, "/healthz") == (200, {"status": "ok"})
    request = urllib.request.Request(f"http://127.0.0.1:{port}/audit", method="POST", data=b"{}")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 405


def test_a_redelivered_batch_changes_nothing(settings: LedgerSettings,
                                            events: list[Envelope]) -> None:
    from arcflare.ledger import queries

    publish(settings, events)
    service = bootstrap(settings)
    service.drain(timeout=30)
    with service.state.connect() as db:
        before = queries.snapshot(db)
    # the same message ids again: what a redelivery after a lost settlement looks like
    publish(settings, events)
    service.drain(timeout=30)

    with service.state.connect() as db:
        assert queries.snapshot(db) == before


@pytest.mark.parametrize("stop_first", [True, False], ids=["stop-arrives-first",
                                                           "start-arrives-first"])
def test_through_the_bus_a_restarted_idle_server_reads_running_and_idle(
        tmp_path: Path, stop_first: bool) -> None:
    from arcflare.contracts import events as e

    from .conftest import outcome, provisioning

    # `local down` then `local up` and a second CreateFederation: the restarted deployer
    # reports generation 1 stopped while it starts generation 2 (stamped 2 s *earlier*)
    stopped = outcome(e.SiteStopped(federation=FED, site="server", reason="requested",
                                    generation=1), None, 100)
    started = outcome(e.ServerDeployed(federation=FED, endpoint="localhost:8102",
                                       backend="local", handle="5151", generation=2),
                      "auto-deploy-2", 98)
    idle = outcome(e.FederationStatusObserved(federation=FED, server_status="stopped",
                                              clients=[]), None, 110)
    first = [*provisioning(), outcome(e.ServerDeployed(
        federation=FED, endpoint="localhost:8102", backend="local", handle="4242",
        generation=1), "auto-deploy-1", 5)]
    settings = LedgerSettings(data_dir=tmp_path / "data", ledger_port=0)
    publish(settings, first)
    publish(settings, [stopped, started] if stop_first else [started, stopped])
    publish(settings, [idle])

    with serving(settings) as (_, port):
        code, federation = get(port, f"/federations/{FED}")

    assert code == 200
    server = federation["server"]
    assert (server["lifecycle"], server["engine"], server["generation"]) == (
        "running", "idle", 2)
    assert federation["lifecycle"] == "running"
    assert "server" not in {s["site"] for s in federation["sites"]}
