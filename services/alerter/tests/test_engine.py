"""The engine alone (real SQLite, no bus): conditions, dedup, for-duration, clearing."""
from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from arcflare.alerter.engine import AlertEngine
from arcflare.alerter.loader import load_rules, parse_rules
from arcflare.alerter.tables import SCHEMA
from arcflare.contracts import events as e
from arcflare.contracts.envelope import Envelope

FED = "hospitals"


@pytest.fixture
def db(tmp_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(tmp_path / "alerter.db", isolation_level=None)
    conn.executescript(SCHEMA)
    return conn


@pytest.fixture
def engine() -> AlertEngine:
    return AlertEngine(load_rules())


def down(site: str = "north-1", status: str = "disconnected") -> e.SiteHealthChanged:
    return e.SiteHealthChanged(federation=FED, site=site, status=status,
                               diagnosis="no heartbeat")


def up(site: str = "north-1") -> e.SiteHealthChanged:
    return e.SiteHealthChanged(federation=FED, site=site, status="connected")


def job(status: str) -> e.JobCompleted:
    return e.JobCompleted(federation=FED, job_id=f"job-{status}", name="fedavg", status=status,
                          duration_s=3)


def test_a_job_that_did_not_complete_raises_and_a_completed_one_does_not(db, engine, at) -> None:
    ok = engine.observe(db, at(job("FINISHED:COMPLETED"), 0))
    aborted = engine.observe(db, at(job("FINISHED:ABORTED"), 1))

    assert ok == []
    assert [a.rule.name for a in aborted] == ["job-not-completed"]
    assert aborted[0].summary == "job fedavg (job-FINISHED:ABORTED) of hospitals ended FINISHED:ABORTED"


@pytest.mark.parametrize("event", [
    e.DeploymentFailed(federation=FED, target="north-1", reason="no python3"),
    e.CommandRejected(federation=FED, command_type="StopSite", command_id="c1",
                      reason="unauthorized"),
    e.CertificateExpiring(federation=FED, participant="north-1", kind="client",
                          fingerprint=":".join(["AB"] * 32), not_after="2026-12-20T00:00:00Z",
                          days_left=21),
    e.JobFailed(federation=FED, name="big", reason="min_clients not met"),
])
def test_default_rules_raise_at_once_for_failures(db, engine, at, event) -> None:
    raised = engine.observe(db, at(event, 0))

    assert len(raised) == 1
    assert raised[0].source_type == event.type_name()


def test_a_repeat_within_the_dedup_window_is_suppressed(db, engine, at) -> None:
    failed = e.DeploymentFailed(federation=FED, target="north-1", reason="x")

    first = engine.observe(db, at(failed, 0))
    repeat = engine.observe(db, at(failed, 60))  # default dedup 10 min
    later = engine.observe(db, at(failed, 11 * 60))

    assert (len(first), len(repeat), len(later)) == (1, 0, 1)
    assert db.execute("SELECT suppressed FROM last_raised").fetchone()[0] == 1


def test_other_keys_are_not_deduplicated(db, engine, at) -> None:
    a = engine.observe(db, at(e.DeploymentFailed(federation=FED, target="a", reason="x"), 0))
    b = engine.observe(db, at(e.DeploymentFailed(federation=FED, target="b", reason="x"), 1))

    assert len(a) == len(b) == 1


def test_a_site_down_for_two_minutes_raises_when_due(db, engine, at) -> None:
    started = at(down(), 0)

    now = engine.observe(db, started)
    early = engine.due(db, started.occurred_at + timedelta(seconds=119))
    due = engine.due(db, started.occurred_at + timedelta(seconds=120))
    again = engine.due(db, started.occurred_at + timedelta(seconds=300))

    assert (now, early, again) == ([], [], [])
    assert [a.rule.name for a in due] == ["site-down"]
    assert due[0].site == "north-1"
    assert "disconnected for more than 2 minutes" in due[0].summary


def test_a_site_that_reconnects_in_time_raises_nothing(db, engine, at) -> None:
    engine.observe(db, at(down(), 0))
    engine.observe(db, at(up(), 60))

    assert engine.due(db, at(up(), 0).occurred_at + timedelta(minutes=10)) == []


def test_a_reconnect_that_arrives_before_the_disconnect_still_clears(db, engine, at) -> None:
    engine.observe(db, at(up(), 60))
    engine.observe(db, at(down(), 0))  # older, delivered late

    assert engine.due(db, at(up(), 0).occurred_at + timedelta(minutes=10)) == []


def test_an_older_reconnect_does_not_clear_a_newer_disconnect(db, engine, at) -> None:
    engine.observe(db, at(down(), 100))
    engine.observe(db, at(up(), 50))

    assert len(engine.due(db, at(up(), 0).occurred_at + timedelta(minutes=10))) == 1


def test_a_listed_clearing_event_cancels_the_wait(db, engine, at) -> None:
    engine.observe(db, at(down(status="crashed"), 0))
    engine.observe(db, at(e.SiteRemoved(federation=FED, site="north-1"), 30))

    assert engine.due(db, at(up(), 0).occurred_at + timedelta(minutes=10)) == []


def test_a_second_disconnect_keeps_the_first_start(db, engine, at) -> None:
    engine.observe(db, at(down(), 0))
    engine.observe(db, at(down(status="crashed"), 90))

    due = engine.due(db, at(up(), 120).occurred_at)

    assert len(due) == 1


def test_custom_conditions_with_comparisons(db, at) -> None:
    engine = AlertEngine(parse_rules(
        "rules:\n"
        "  - name: cert-soon\n"
        "    event: CertificateExpiring\n"
        "    when: {days_left: {lte: 7}, kind: {in: [server, ca]}}\n"
        "    severity: critical\n", "rules.yaml"))
    fp = ":".join(["AB"] * 32)

    def expiring(days: int, kind: str) -> e.CertificateExpiring:
        return e.CertificateExpiring(federation=FED, participant="server", kind=kind,
                                     fingerprint=fp, not_after="2026-12-01T00:00:00Z",
                                     days_left=days)

    assert engine.observe(db, at(expiring(30, "server"), 0)) == []
    assert engine.observe(db, at(expiring(5, "client"), 0)) == []
    assert len(engine.observe(db, at(expiring(5, "server"), 0))) == 1


def test_alert_raised_never_triggers_rules(db, engine, at) -> None:
    raised = e.AlertRaised(rule="x", severity="critical", summary="s", source_type="JobFailed",
                           source_message_id="m")

    assert engine.observe(db, at(raised, 0)) == []


def test_a_crashed_process_alerts_unless_it_is_redeployed(db, engine, at) -> None:
    crashed = e.SiteStopped(federation=FED, site="north-1", reason="crashed")
    crashed_b = e.SiteStopped(federation=FED, site="south-1", reason="crashed")
    redeployed = e.SiteDeployed(federation=FED, site="south-1", backend="local", handle="1")

    engine.observe(db, at(crashed, 0))
    engine.observe(db, at(crashed_b, 0))
    engine.observe(db, at(redeployed, 30))
    due = engine.due(db, at(crashed, 120).occurred_at)

    assert [(a.rule.name, a.site) for a in due] == [("site-process-crashed", "north-1")]


def test_default_rules_alert_on_refused_messages_and_commands(db) -> None:
    engine = AlertEngine(load_rules(None))
    forged = e.MessageRefused(federation="fed", consumer="events/deployer",
                              message_type="SiteProvisioned", message_id="m1",
                              reason="Forbidden", detail="SiteProvisioned comes only from "
                              "service provisioner", claimed_by="site:fed/a", proven_by="site:fed/a")
    lead_posing = e.CommandRejected(federation="fed", command_type="TeardownFederation",
                                    command_id="c1", reason="Unauthenticated",
                                    claimed_by="owner@x.org", proven_by="lead@x.org")

    raised = [a for m in (forged, lead_posing) for a in engine.observe(db, Envelope.wrap(m))]

    assert sorted(a.rule.name for a in raised) == ["command-refused-untrusted", "message-refused"]
    assert {a.rule.severity for a in raised} == {"critical"}
    assert any("proven lead@x.org" in a.summary for a in raised)


@pytest.mark.parametrize(("kind", "participant", "rule", "words"), [
    ("client", "north-1", "certificate-expiring", "`arcflare site renew hospitals north-1`"),
    ("server", "server", "server-certificate-expiring",
     "`arcflare federation renew-server hospitals`"),
    ("admin", "it@north.org", "admin-certificate-expiring",
     "`arcflare federation renew-admin hospitals it@north.org`"),
    ("ca", "rootCA", "ca-expiring", "rotate it (docs/certificates.md)"),
])
def test_each_expiry_alert_says_how_to_renew(db, engine, at, kind, participant, rule,
                                             words) -> None:
    expiring = e.CertificateExpiring(federation=FED, participant=participant, kind=kind,
                                     fingerprint=":".join(["AB"] * 32),
                                     not_after="2026-12-20T00:00:00Z", days_left=21)

    (raised,) = engine.observe(db, at(expiring, 0))

    assert raised.rule.name == rule
    assert words in raised.summary and "21 days" in raised.summary
    assert raised.rule.severity == ("critical" if kind == "ca" else "warning")
