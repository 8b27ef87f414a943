"""Webhook sinks against a loopback HTTP receiver: payloads, retries, timeouts, recorded failure."""
from __future__ import annotations

import socket
import threading
import time

import pytest
from arcflare.alerter.deliveries import DeliveryWorker
from arcflare.runtime import StateStore
from webhook_support import book_for, delivery, raise_one, worker_for


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


def test_a_retried_delivery_carries_the_same_idempotency_key(state, receiver, at, clock) -> None:
    book = book_for(receiver.url, retries=2, backoff_s=1)
    alert_id = raise_one(state, book, at)
    worker = worker_for(book, state, clock)
    receiver.script = [500]

    worker.deliver_due()
    clock.advance(1)
    worker.deliver_due()

    assert [h["Idempotency-Key"] for h in receiver.headers] == [alert_id, alert_id]
    assert [b["idempotency_key"] for b in receiver.requests] == [alert_id, alert_id]
    assert delivery(state, alert_id)["status"] == "delivered"
    worker.close()


@pytest.mark.parametrize("fmt", ["slack", "teams"])
def test_chat_payloads_carry_the_alert_id_as_their_key(state, receiver, at, clock, fmt) -> None:
    book = book_for(receiver.url, fmt)
    alert_id = raise_one(state, book, at)
    worker = worker_for(book, state, clock)

    worker.deliver_due()

    body, headers = receiver.requests[0], receiver.headers[0]
    element = (body["blocks"][0]["block_id"] if fmt == "slack"
               else body["attachments"][0]["content"]["body"][0]["id"])
    assert element == headers["Idempotency-Key"] == alert_id
    worker.close()


UNUSABLE_URLS = {
    "bad-port": "http://[::1",                 # httpx.InvalidURL
    "bad-ipv4": "http://256.0.0.1/hook",       # httpx.InvalidURL
    "control-char": "http://hooks.example/\n",  # httpx.InvalidURL
    "empty-label": "http://a..b/hook",         # UnicodeError from the IDNA codec
    "not-http": "ftp://127.0.0.1/hook",        # httpx.UnsupportedProtocol
    "no-scheme": "hooks.example/hook",         # httpx.UnsupportedProtocol
}


def run_worker(worker: DeliveryWorker) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    return thread, stop


def wait_until_settled(state: StateStore, alert_id: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while (row := delivery(state, alert_id))["status"] == "pending" and time.monotonic() < deadline:
        time.sleep(0.02)
    return row


@pytest.mark.parametrize("url", list(UNUSABLE_URLS.values()), ids=list(UNUSABLE_URLS))
def test_an_unusable_url_is_a_recorded_failure_and_the_worker_lives_on(
        state, at, clock, monkeypatch, url) -> None:
    monkeypatch.setenv("ARCFLARE_TEST_HOOK", url)
    book = book_for("ARCFLARE_TEST_HOOK", retries=0, where="url_env")
    first, second = raise_one(state, book, at, "north-1"), raise_one(state, book, at, "south-1")
    worker = worker_for(book, state, clock)
    thread, stop = run_worker(worker)
    try:
        rows = [wait_until_settled(state, first), wait_until_settled(state, second)]
        alive = thread.is_alive()
    finally:
        stop.set()
        thread.join(5)
        worker.close()

    assert [(r["status"], r["attempts"]) for r in rows] == [("failed", 1), ("failed", 1)]
    assert all(r["last_error"] for r in rows)
    assert alive


def test_a_refused_connection_is_a_recorded_failure_and_the_worker_lives_on(
        state, at, clock) -> None:
    book = book_for(f"http://127.0.0.1:{closed_port()}/hook", retries=0)
    alert_id = raise_one(state, book, at)
    worker = worker_for(book, state, clock)
    thread, stop = run_worker(worker)
    try:
        row = wait_until_settled(state, alert_id)
        alive = thread.is_alive()
    finally:
        stop.set()
        thread.join(5)
        worker.close()

    assert row["status"] == "failed" and row["last_error"].startswith("ConnectError")
    assert alive
