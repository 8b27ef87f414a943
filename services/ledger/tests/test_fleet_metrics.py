"""The fleet gauges on the ledger's /metrics, and the trace id each command's audit row keeps."""
from __future__ import annotations

import urllib.request
from datetime import datetime
from pathlib import Path

from arcflare.bus import connect
from arcflare.bus.codec import to_outgoing
from arcflare.contracts.envelope import Envelope
from arcflare.contracts.events import JobSubmitted
from arcflare.ledger.bootstrap import bootstrap
from arcflare.ledger.fleet_metrics import FleetCollector
from arcflare.ledger.settings import LedgerSettings
from arcflare.observability import messaging
from prometheus_client.parser import text_string_to_metric_families

from tests.support.signing import send_as_authors, signer_for

FED = "hospitals"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def served(settings: LedgerSettings, envelopes: list[Envelope], *extra) -> tuple[str, list]:
    """The ledger's /metrics page and audit after it handled the envelopes (and `extra`, sent
    as they are)."""
    with connect(settings) as bus:
        send_as_authors(bus, settings.data_dir, envelopes)
        for entity, message in extra:
            bus.send(entity, [message])
    service = bootstrap(settings)
    service.drain(timeout=30)
    service.start()
    try:
        port_file = settings.data_dir / "run" / "ledger.port"
        for _ in range(200):  # the API starts with the service's background tasks
            if port_file.exists() and port_file.read_text():
                break
            service.stopping.wait(0.05)
        port = int(port_file.read_text())
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            text = answer.read().decode()
        with service.state.connect() as db:
            audit = [dict(r) for r in db.execute("SELECT command_id, trace_id FROM audit")]
    finally:
        service.stop()
    return text, audit


def expiries(events: list[Envelope]) -> dict[str, float]:
    """When each site's certificate expires, by the last word on it in the stream."""
    found = {}
    for env in sorted(events, key=lambda env: env.occurred_at):
        if env.type in ("SiteProvisioned", "CertificateExpiring"):
            site = env.payload.get("site") or env.payload["participant"]
            found[site] = datetime.fromisoformat(env.payload["not_after"]).timestamp()
    return found


def test_the_fleet_is_on_the_ledgers_metrics_page(tmp_path: Path, events) -> None:
    settings = LedgerSettings(data_dir=tmp_path / "data", ledger_port=0)
    text, _ = served(settings, events)
    found = samples(text)

    def gauge(name: str, **labels: str) -> float | None:
        return found.get((name, frozenset({"federation": FED, **labels}.items())))

    assert gauge("arcflare_fleet_sites", health="connected") == 1
    assert gauge("arcflare_fleet_sites", health="unknown") == 1  # south-1: no agent report yet
    assert gauge("arcflare_fleet_sites", health="crashed") == 0  # every state has a series
    expected = expiries(events)
    assert set(expected) == {"north-1", "south-1"}
    for site, expires in expected.items():
        assert gauge("arcflare_fleet_certificate_expiry_timestamp_seconds", participant=site,
                     kind="client") == expires
    assert gauge("arcflare_fleet_jobs", status="FINISHED:COMPLETED") == 1
    assert gauge("arcflare_fleet_rounds_completed_total") == 3
    # and the runtime's own counters, on the same page
    assert found[("arcflare_messages_handled_total", frozenset(
        {"service": "ledger", "consumer": "events/ledger", "type": "JobCompleted"}.items()))] >= 1


def test_a_running_job_counts_the_rounds_its_metrics_reached(tmp_path: Path, enveloped) -> None:
    from arcflare.contracts.events import MetricPoint, MetricsReported

    db = tmp_path / "data" / "ledger.db"
    settings = LedgerSettings(data_dir=tmp_path / "data", ledger_port=0)
    stream = [
        enveloped(JobSubmitted(federation=FED, job_id="job-2", name="fedavg", sites=["a"],
                               rounds=10), "cmd-submit", 1),
        enveloped(MetricsReported(federation=FED, job_id="job-2", site="a", points=[
            MetricPoint(key="accuracy", value=0.5, step=s, timestamp_ms=s) for s in (0, 1, 2)]),
            None, 2),
    ]
    with connect(settings) as bus:
        send_as_authors(bus, settings.data_dir, stream)
    bootstrap(settings).drain(timeout=30)

    (rounds,) = [m for m in FleetCollector(db).collect()
                 if m.name == "arcflare_fleet_rounds_completed"]
    assert [(s.labels, s.value) for s in rounds.samples] == [({"federation": FED}, 3)]


def test_an_empty_ledger_shows_an_empty_fleet(tmp_path: Path) -> None:
    families = list(FleetCollector(tmp_path / "none.db").collect())
    assert [f.name for f in families] == [
        "arcflare_fleet_sites", "arcflare_fleet_certificate_expiry_timestamp_seconds",
        "arcflare_fleet_jobs", "arcflare_fleet_rounds_completed"]
    assert all(not f.samples for f in families)


def test_the_audit_keeps_the_trace_id_of_each_traced_command(tmp_path: Path, enveloped) -> None:
    settings = LedgerSettings(data_dir=tmp_path / "data", ledger_port=0)
    traced = enveloped(JobSubmitted(federation=FED, job_id="job-3", name="fedavg", sites=["a"],
                                    rounds=2), "cmd-traced", 1)
    untraced = enveloped(JobSubmitted(federation=FED, job_id="job-4", name="fedavg",
                                      sites=["a"], rounds=2), "cmd-untraced", 2)
    message = to_outgoing(traced, signer=signer_for(settings.data_dir, "service:job-controller"))

    _, audit = served(settings, [untraced], ("events", messaging.stamp(message, TRACEPARENT)))

    assert {r["command_id"]: r["trace_id"] for r in audit} == {
        "cmd-traced": "4bf92f3577b34da6a3ce929d0e0e4736", "cmd-untraced": None}
