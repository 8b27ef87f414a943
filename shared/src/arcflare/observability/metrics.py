"""What every service's /metrics page shows (Prometheus text format).

Counters and the duration histogram are kept as messages are processed; the gauges (readiness,
outbox backlog, how long the oldest message has waited) are read from the service when scraped,
so nothing is spent on them between scrapes. Label values are bounded: message types outside the
catalogue count as "unknown", reasons are code constants (anything else counts as "other"),
consumers are the topology's entities. No message, job or correlation id is ever a label.
"""
from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import structlog
from arcflare.contracts.base import message_types
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = structlog.get_logger("arcflare.observability")
_MESSAGE = ("service", "consumer", "type")
RECEIVED = Counter("arcflare_messages_received_total",
                   "Messages received from the bus, by consumer and message type.", _MESSAGE)
HANDLED = Counter("arcflare_messages_handled_total",
                  "Messages whose handlers ran and committed, by consumer and message type.",
                  _MESSAGE)
REJECTED = Counter("arcflare_messages_rejected_total",
                   "Messages refused at once (invalid, unproven, forbidden, refused by their "
                   "handler), by reason.", (*_MESSAGE, "reason"))
DEAD_LETTERED = Counter("arcflare_messages_dead_lettered_total",
                        "Messages this service moved to the dead-letter queue, by reason.",
                        (*_MESSAGE, "reason"))
ABANDONED = Counter("arcflare_messages_abandoned_total",
                    "Deliveries abandoned after a transient failure, for another try.", _MESSAGE)
HANDLING = Histogram("arcflare_message_handling_duration_seconds",
                     "Time from receiving a message to settling it (admission, handlers, commit).",
                     (*_MESSAGE, "outcome"),
                     buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
                              120, 300))
LOCK_RENEWALS = Counter("arcflare_lock_renewals_total",
                        "Renewals of message and session locks while handlers run, by result.",
                        ("service", "kind", "result"))

_REASON = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
_known_types: frozenset[str] = frozenset()


def type_label(name: object) -> str:
    """A message type as a label: its name when it is in the catalogue, else "unknown" (the
    subject of a hostile message must not mint a new series)."""
    global _known_types
    if not _known_types:
        _known_types = frozenset(message_types())
    return name if isinstance(name, str) and name in _known_types else "unknown"


def reason_label(reason: str | None) -> str:
    return reason if reason and _REASON.match(reason) else "other"


class Processing:
    """Counts one received message and times it, from `processing()` to `ended()`."""

    __slots__ = ("labels", "reason", "started")

    def __init__(self, service: str, consumer: str, subject: object) -> None:
        self.labels = (service, consumer, type_label(subject))
        self.started = time.perf_counter()
        self.reason: str | None = None
        RECEIVED.labels(*self.labels).inc()

    def ended(self, outcome: str) -> None:
        HANDLING.labels(*self.labels, outcome).observe(time.perf_counter() - self.started)
        if outcome == "handled":
            HANDLED.labels(*self.labels).inc()
        elif outcome == "abandoned":
            ABANDONED.labels(*self.labels).inc()


_current: ContextVar[Processing | None] = ContextVar("arcflare_processing", default=None)


@contextmanager
def processing(service: str, consumer: str, subject: object) -> Iterator[Processing]:
    """The message this thread is processing now, for rejected() and dead_lettered()."""
    counted = Processing(service, consumer, subject)
    token = _current.set(counted)
    try:
        yield counted
    finally:
        _current.reset(token)


def rejected(reason: str) -> None:
    counted = _current.get()
    if counted is not None:
        counted.reason = reason
        REJECTED.labels(*counted.labels, reason_label(reason)).inc()


def dead_lettered(reason: str) -> None:
    counted = _current.get()
    if counted is not None:
        counted.reason = reason
        DEAD_LETTERED.labels(*counted.labels, reason_label(reason)).inc()


def lock_renewed(service: str, kind: str, ok: bool) -> None:
    LOCK_RENEWALS.labels(service, kind, "ok" if ok else "failed").inc()


class ServiceGauges(Collector):
    """Read at scrape time from each running service of this process."""

    def __init__(self) -> None:
        self._services: dict[int, Any] = {}
        self._guard = threading.Lock()

    def add(self, service: Any) -> None:
        with self._guard:
            self._services[id(service)] = service

    def remove(self, service: Any) -> None:
        with self._guard:
            self._services.pop(id(service), None)

    def collect(self) -> Iterator[Metric]:
        ready = GaugeMetricFamily("arcflare_service_ready",
                                  "1 when the service is ready (its /readyz answers 200).",
                                  labels=["service"])
        backlog = GaugeMetricFamily("arcflare_outbox_backlog_messages",
                                    "Outbox messages due and not sent yet.", labels=["service"])
        oldest = GaugeMetricFamily("arcflare_outbox_oldest_age_seconds",
                                   "Age of the oldest outbox message due and not sent yet "
                                   "(0 when none).", labels=["service"])
        waiting = GaugeMetricFamily("arcflare_consumer_oldest_message_age_seconds",
                                    "How long the oldest message still on a consumed queue or "
                                    "subscription has been there (0 when empty).",
                                    labels=["service", "consumer"])
        with self._guard:
            services = list(self._services.values())
        now = datetime.now(UTC)
        for service in services:
            ready.add_metric([service.name], 1.0 if service.readiness().get("ready") else 0.0)
            count, age = service.outbox.backlog(now)
            backlog.add_metric([service.name], count)
            oldest.add_metric([service.name], age)
            for consumer, age_s in _waiting(service, now):
                waiting.add_metric([service.name, consumer], age_s)
        yield from (ready, backlog, oldest, waiting)


_unpeekable: set[tuple[str, str]] = set()


def _waiting(service: Any, now: datetime) -> Iterator[tuple[str, float]]:
    for consumer in service.consumers:
        try:
            head = service.bus.peek(consumer.entity, consumer.subscription, max_messages=1)
        except Exception as exc:  # noqa: BLE001 - Azure cannot peek a session queue unsessioned
            if (service.name, consumer.name) not in _unpeekable:  # said once, not every scrape
                _unpeekable.add((service.name, consumer.name))
                log.warning("no waiting-message age for this consumer: the bus cannot peek it",
                            consumer=consumer.name, error=repr(exc))
            continue
        age = (now - head[0].enqueued_time).total_seconds() if head else 0.0
        yield consumer.name, max(0.0, age)


SERVICE_GAUGES = ServiceGauges()
REGISTRY.register(SERVICE_GAUGES)


def exposition() -> tuple[bytes, str]:
    """This process's metrics page and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
