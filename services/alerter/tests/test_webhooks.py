"""Webhook sinks against a loopback HTTP receiver: payloads, retries, timeouts, recorded failure."""
from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path

import pytest
from arcflare.alerter.deliveries import DeliveryWorker, raise_alert
from arcflare.alerter.engine import AlertEngine
from arcflare.alerter.loader import parse_rules
from arcflare.alerter.schema import MIGRATIONS
from arcflare.contracts import events as e
from arcflare.runtime import StateStore

FED = "hospitals"


class Clock:
    def __init__(self, start) -> None:
        self.now = start

    def __call__(self):
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def book_for(url: str, fmt: str = "json", retries: int = 2, timeout_s: float = 5.0,
             backoff_s: float = 10.0):
    return parse_rules(
        f"sinks:\n"
        f"  - {{name: hook, kind: webhook, format: {fmt}, url: '{url}', retries: {retries},"
        f" timeout_s: {timeout_s}, backoff_s: {backoff_s}}}\n"
        f"rules:\n"
        f"  - name: deployment-failed\n"
        f"    event: DeploymentFailed\n"
        f"    severity: critical\n"
        f"    key: [federation, target]\n"
        f"    sinks: [log, hook]\n"
        f"    summary: 'deploying {{target}} failed: {{reason}}'\n",
        "rules.yaml",
    )


def raise_one(state: StateStore, book, at, target: str = "north-1") -> str:
    envelope = at(e.DeploymentFailed(federation=FED, target=target, reason="no python3"), 0)
    with state.unit_of_work(envelope) as uow:
        alerts = AlertEngine(book).observe(uow.write(), envelope)
        return raise_alert(uow, alerts[0], envelope.occurred_at)


def delivery(state: StateStore, alert_id: str, sink: str = "hook") -> dict:
    with state.connect() as db:
        return dict(db.execute("SELECT * FROM deliveries WHERE alert_id = ? AND sink = ?",
                               (alert_id, sink)).fetchone())


@pytest.fixture
def state(tmp_path: Path) -> StateStore:
    return StateStore(tmp_path / "alerter.db", migrations=MIGRATIONS)


@pytest.fixture
def clock(at) -> Clock:
    return Clock(at(e.SiteRemoved(federation=FED, site="x"), 0).occurred_at)


def worker_for(book, state, clock) -> DeliveryWorker:
    return DeliveryWorker(book.sink("hook"), state, clock)


def test_a_teams_payload_is_an_adaptive_card(state, receiver, at, clock) -> None:
    book = book_for(receiver.url, "teams")
    alert_id = raise_one(state, book, at)
    worker = worker_for(book, state, clock)

    worker.deliver_due()

    body = receiver.requests[0]
    card = body["attachments"][0]
    assert body["type"] == "message"
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["type"] == "AdaptiveCard"
    assert card["content"]["body"][1]["text"] == "deploying north-1 failed: no python3"
    assert delivery(state, alert_id)["status"] == "delivered"
    worker.close()


def test_a_slack_payload_has_text_and_blocks(state, receiver, at, clock) -> None:
    book = book_for(receiver.url, "slack")
    raise_one(state, book, at)
    worker = worker_for(book, state, clock)

    worker.deliver_due()

    body = receiver.requests[0]
    assert body["text"] == "[CRITICAL] deployment-failed: deploying north-1 failed: no python3"
    assert body["blocks"][0]["type"] == "section"
    worker.close()


def test_a_500_is_retried_with_backoff_until_it_is_taken(state, receiver, at, clock) -> None:
    book = book_for(receiver.url, retries=3, backoff_s=10)
    alert_id = raise_one(state, book, at)
    worker = worker_for(book, state, clock)
    receiver.script = [500, 500]

    worker.deliver_due()
    not_yet = worker.deliver_due()  # the backoff has not passed
    clock.advance(10)
    worker.deliver_due()
    clock.advance(19)
    too_early = worker.deliver_due()  # second backoff doubles to 20 s
    clock.advance(1)
    worker.deliver_due()

    assert (not_yet, too_early) == (0, 0)
    assert len(receiver.requests) == 3
    row = delivery(state, alert_id)
    assert (row["status"], row["attempts"], row["last_error"]) == ("delivered", 3, None)
    worker.close()


def test_a_webhook_that_keeps_failing_is_recorded_as_failed(state, receiver, at, clock) -> None:
    book = book_for(receiver.url, retries=2, backoff_s=1)
    alert_id = raise_one(state, book, at)
    worker = worker_for(book, state, clock)
    receiver.script = [500, 500, 500, 500]

    for _ in range(5):
        worker.deliver_due()
        clock.advance(60)

    row = delivery(state, alert_id)
    assert len(receiver.requests) == 3
    assert (row["status"], row["attempts"]) == ("failed", 3)
    assert row["last_error"].startswith("HTTP 500")
    assert delivery(state, alert_id, sink="log")["status"] == "pending"  # other sinks unaffected
    worker.close()


def test_a_webhook_that_times_out_is_retried_then_recorded(state, receiver, at, clock) -> None:
    book = book_for(receiver.url, retries=1, timeout_s=0.2, backoff_s=1)
    alert_id = raise_one(state, book, at)
    worker = worker_for(book, state, clock)
    receiver.script = ["slow", "slow"]

    worker.deliver_due()
    clock.advance(5)
    worker.deliver_due()

    row = delivery(state, alert_id)
    assert (row["status"], row["attempts"]) == ("failed", 2)
    assert "timed out" in row["last_error"]
    worker.close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_webhook_is_recorded_not_raised(state, at, clock) -> None:
    book = book_for(f"http://127.0.0.1:{closed_port()}/none", retries=0)
    alert_id = raise_one(state, book, at)
    worker = worker_for(book, state, clock)

    worker.deliver_due()

    row = delivery(state, alert_id)
    assert row["status"] == "failed" and row["last_error"]
    worker.close()
