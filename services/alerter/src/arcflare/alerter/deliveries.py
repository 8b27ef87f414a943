"""Raising an alert (AlertRaised + one delivery row per sink) and delivering it.

A worker per sink sends due deliveries, so a slow webhook delays only its own
alerts and never the handler that raised them. Failures are retried with
exponential backoff; after the last attempt the row stays 'failed' with its error.
No alert can stop its worker: whatever an attempt raises is recorded as its failure.
"""
from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from arcflare.alerter.engine import Alert, stamp
from arcflare.alerter.rules import RuleBook, Sink
from arcflare.alerter.sinks import DeliveryError, deliver
from arcflare.contracts.events import AlertRaised
from arcflare.observability import tracing
from arcflare.runtime import StateStore, UnitOfWork, get_logger
from opentelemetry.trace import SpanKind

log = get_logger("arcflare.alerter")
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def raise_alert(uow: UnitOfWork, alert: Alert, now: datetime) -> str:
    """Publish AlertRaised and queue a delivery per sink, in the unit's transaction."""
    alert_id = uow.publish(AlertRaised(
        rule=alert.rule.name, severity=alert.rule.severity, summary=alert.summary,
        federation=alert.federation, site=alert.site, source_type=alert.source_type,
        source_message_id=alert.source_message_id,
    ))
    db = uow.write()
    db.execute(
        "INSERT INTO alerts VALUES (?,?,?,?,?,?,?,?,?,?)",
        (alert_id, alert.rule.name, alert.rule.severity, alert.summary, alert.federation,
         alert.site, alert.key, alert.source_type, alert.source_message_id, stamp(alert.at)),
    )
    db.executemany(
        "INSERT INTO deliveries (alert_id, sink, status, next_attempt_at, updated_at, traceparent)"
        " VALUES (?, ?, 'pending', ?, ?, ?)",
        [(alert_id, sink, stamp(now), stamp(now), tracing.current_traceparent())
         for sink in alert.rule.sinks],
    )
    return alert_id


class DeliveryWorker:
    """Delivers one sink's due alerts; `run(stop)` is the service's background loop."""

    def __init__(self, sink: Sink, state: StateStore, clock: Clock = utcnow,
                 poll_s: float = 0.5) -> None:
        self.sink = sink
        self.state = state
        self.wake = threading.Event()
        self.clock = clock
        self.poll_s = poll_s
        self.__name__ = f"deliver-{sink.name}"
        self.http = httpx.Client(follow_redirects=False)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            if not self.deliver_due():
                self.wake.wait(self.poll_s)
                self.wake.clear()

    def close(self) -> None:
        self.http.close()

    __call__ = run

    def deliver_due(self) -> int:
        """One pass: try every delivery of this sink that is due. Returns how many were tried."""
        with self.state.connect() as db:
            rows = db.execute(
                "SELECT d.alert_id, d.attempts, a.rule, a.severity, a.summary, a.federation,"
                " a.site, a.source_type, a.source_message_id, a.raised_at, d.traceparent"
                " FROM deliveries d"
                " JOIN alerts a USING (alert_id) WHERE d.sink = ? AND d.status = 'pending'"
                " AND d.next_attempt_at <= ? ORDER BY d.next_attempt_at LIMIT 50",
                (self.sink.name, stamp(self.clock())),
            ).fetchall()
            for row in rows:
                self._attempt(db, dict(row))
        return len(rows)

    def _attempt(self, db: sqlite3.Connection, row: dict[str, Any]) -> None:
        attempts = row.pop("attempts") + 1
        # a delivery belongs to the trace of the event that raised its alert
        with tracing.resumed(row.pop("traceparent"), f"deliver alert to {self.sink.kind}",
                             {"arcflare.alert.sink": self.sink.name,
                              "arcflare.alert.rule": row["rule"], "arcflare.attempt": attempts},
                             kind=SpanKind.CLIENT) as span:
            error = self._deliver(row)
            tracing.failed(span, error)
        if error is not None:
            self._failed(db, row["alert_id"], attempts, error)
            return
        db.execute("UPDATE deliveries SET status = 'delivered', attempts = ?, last_error = NULL,"
                   " updated_at = ? WHERE alert_id = ? AND sink = ?",
                   (attempts, stamp(self.clock()), row["alert_id"], self.sink.name))

    def _deliver(self, row: dict[str, Any]) -> str | None:
        """None when the sink took the alert, else why not."""
        try:
            deliver(self.sink, row, self.http)
        except DeliveryError as exc:
            return str(exc)
        except Exception as exc:  # a bug: its traceback is logged and the worker lives on
            log.exception("alert delivery raised", sink=self.sink.name, alert_id=row["alert_id"])
            return f"{type(exc).__name__}: {exc}"
        return None

    def _failed(self, db: sqlite3.Connection, alert_id: str, attempts: int, error: str) -> None:
        now = self.clock()
        if attempts > self.sink.retries:
            log.error("alert delivery failed; giving up", sink=self.sink.name, alert_id=alert_id,
                      attempts=attempts, error=error)
            status, next_at = "failed", now
        else:
            delay = self.sink.backoff_s * 2 ** (attempts - 1)
            log.warning("alert delivery failed; retrying", sink=self.sink.name,
                        alert_id=alert_id, attempts=attempts, retry_in_s=delay, error=error)
            status, next_at = "pending", now + timedelta(seconds=delay)
        db.execute("UPDATE deliveries SET status = ?, attempts = ?, last_error = ?,"
                   " next_attempt_at = ?, updated_at = ? WHERE alert_id = ? AND sink = ?",
                   (status, attempts, error, stamp(next_at), stamp(now), alert_id, self.sink.name))


def workers(book: RuleBook, state: StateStore, clock: Clock = utcnow) -> list[DeliveryWorker]:
    return [DeliveryWorker(sink, state, clock) for sink in book.all_sinks()]
