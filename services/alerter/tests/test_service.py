"""The alerter as a service: events from the embedded bus, a for-duration alert delivered
to a loopback webhook and published as AlertRaised."""
from __future__ import annotations

import time
from pathlib import Path

from arcflare.alerter.bootstrap import bootstrap
from arcflare.alerter.settings import AlerterSettings
from arcflare.bus import connect
from arcflare.bus.codec import from_received
from arcflare.contracts import events as e
from arcflare.contracts.envelope import Envelope

from tests.support.signing import send_as_authors

FED = "hospitals"


def rules(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "sinks:\n"
        f"  - {{name: hook, kind: webhook, format: slack, url: '{url}', backoff_s: 0.1}}\n"
        "rules:\n"
        "  - name: site-down\n"
        "    event: SiteHealthChanged\n"
        "    when: {status: {in: [crashed, disconnected]}}\n"
        "    for: 0.5s\n"
        "    severity: critical\n"
        "    sinks: [log, hook]\n"
        "    summary: '{site} is {status}'\n"
    )
    return path


def alerts_published(settings: AlerterSettings) -> list[Envelope]:
    with connect(settings) as bus:
        found = [from_received(m) for m in bus.peek("events", "ledger", max_messages=100)]
    return [env for env in found if env.type == "AlertRaised"]


def test_a_site_down_past_its_duration_is_delivered_and_published(tmp_path, receiver) -> None:
    settings = AlerterSettings(data_dir=tmp_path / "data", alert_check_interval_s=0.1,
                               alert_rules_file=rules(tmp_path, receiver.url))
    service = bootstrap(settings)
    down = Envelope.wrap(e.SiteHealthChanged(federation=FED, site="north-1",
                                             status="disconnected"))
    back = Envelope.wrap(e.SiteHealthChanged(federation=FED, site="south-1", status="crashed"))
    back_up = Envelope.wrap(e.SiteHealthChanged(federation=FED, site="south-1",
                                                status="connected"))
    with connect(settings) as bus:
        send_as_authors(bus, settings.data_dir, [down, back, back_up])
    service.start()
    try:
        delivered = receiver.wait_for(1)
        deadline = time.monotonic() + 30
        while not alerts_published(settings) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        service.stop()

    assert [r["text"] for r in delivered] == [
        "[CRITICAL] site-down: north-1 is disconnected"]
    published = alerts_published(settings)
    assert [(a.payload["rule"], a.payload["site"]) for a in published] == [
        ("site-down", "north-1")]
    assert published[0].payload["source_message_id"] == down.message_id
    with service.state.connect() as db:
        rows = db.execute("SELECT sink, status FROM deliveries ORDER BY sink").fetchall()
    assert [tuple(r) for r in rows] == [("hook", "delivered"), ("log", "delivered")]


def test_a_stalled_webhook_blocks_neither_evaluation_nor_other_sinks(tmp_path, receiver) -> None:
    rules_file = tmp_path / "stall.yaml"
    rules_file.write_text(
        "sinks:\n"
        f"  - {{name: hook, kind: webhook, url: '{receiver.url}', timeout_s: 60}}\n"
        "rules:\n"
        "  - {name: deploy, event: DeploymentFailed, key: [target], sinks: [log, hook],"
        " severity: critical}\n"
    )
    settings = AlerterSettings(data_dir=tmp_path / "data", alert_rules_file=rules_file)
    service = bootstrap(settings)
    receiver.script = ["slow"]  # the first POST hangs until the test releases it
    failures = [Envelope.wrap(e.DeploymentFailed(federation=FED, target=t, reason="x"))
                for t in ("a", "b", "c")]
    with connect(settings) as bus:
        send_as_authors(bus, settings.data_dir, failures)
    service.start()
    try:
        receiver.wait_for(1)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with service.state.connect() as db:
                logged = db.execute("SELECT count(*) FROM deliveries WHERE sink = 'log'"
                                    " AND status = 'delivered'").fetchone()[0]
            if logged == 3:
                break
            time.sleep(0.05)
        with service.state.connect() as db:
            hook = [tuple(r) for r in db.execute(
                "SELECT status FROM deliveries WHERE sink = 'hook'").fetchall()]
        stalled_requests = len(receiver.requests)
        receiver.release.set()
    finally:
        service.stop()

    assert logged == 3  # every alert raised and logged while the webhook hung
    assert stalled_requests == 1
    assert hook == [("pending",)] * 3


def test_a_repeat_within_the_dedup_window_reaches_the_webhook_once(tmp_path, receiver) -> None:
    rules_file = tmp_path / "dedup.yaml"
    rules_file.write_text(
        "sinks:\n"
        f"  - {{name: hook, kind: webhook, format: teams, url: '{receiver.url}'}}\n"
        "rules:\n"
        "  - {name: deploy, event: DeploymentFailed, key: [federation, target], dedup: 10m,"
        " sinks: [hook], summary: '{target} failed'}\n"
    )
    settings = AlerterSettings(data_dir=tmp_path / "data", alert_rules_file=rules_file)
    service = bootstrap(settings)
    failures = [Envelope.wrap(e.DeploymentFailed(federation=FED, target=t, reason="x"))
                for t in ("a", "a", "b")]
    with connect(settings) as bus:
        send_as_authors(bus, settings.data_dir, failures)
    service.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with service.state.connect() as db:
                handled = db.execute("SELECT count(*) FROM _inbox").fetchone()[0]
                delivered = db.execute("SELECT count(*) FROM deliveries"
                                       " WHERE status = 'delivered'").fetchone()[0]
            if handled == 3 and delivered == 2:
                break
            time.sleep(0.05)
    finally:
        service.stop()

    texts = sorted(r["attachments"][0]["content"]["body"][1]["text"] for r in receiver.requests)
    assert texts == ["a failed", "b failed"]
    with service.state.connect() as db:
        assert db.execute("SELECT suppressed FROM last_raised WHERE key LIKE '%target=a'"
                          ).fetchone()[0] == 1
