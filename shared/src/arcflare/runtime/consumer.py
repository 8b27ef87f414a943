"""One consumer: a queue or subscription, its handler table, and how each message ends.

Every received message ends in exactly one of: complete (handled, or a
redelivery of something already handled), abandon after a backoff (transient
failure; the broker dead-letters after max delivery count), or dead-letter now
with a reason (can never succeed) plus CommandRejected for commands.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from arcflare.bus.codec import DecodeError, from_received
from arcflare.bus.port import Bus, MessageLockLost, ReceivedMessage
from arcflare.contracts.base import Command, Message, UnknownMessageType
from arcflare.contracts.envelope import Envelope, field_errors
from arcflare.contracts.events import CommandRejected
from arcflare.contracts.topology import TOPOLOGY
from arcflare.runtime.errors import Rejected
from arcflare.runtime.inject import call_handler
from arcflare.runtime.logging import get_logger
from arcflare.runtime.state import StateStore, UnitOfWork
from pydantic import ValidationError

Handler = Callable[..., Any]
Authorizer = Callable[..., None]
log = get_logger("arcflare.runtime")


@dataclass
class Consumer:
    entity: str
    subscription: str | None = None
    handlers: Mapping[type[Message], Handler | Sequence[Handler]] = field(default_factory=dict)
    sessions: bool | None = None  # None: as the topology says
    #: True: messages are commands (rejections answered with CommandRejected)
    commands: bool | None = None
    concurrency: int | None = None

    def __post_init__(self) -> None:
        queue = TOPOLOGY.queue(self.entity)
        if self.sessions is None:
            self.sessions = bool(queue and queue.options.requires_session)
        if self.commands is None:
            self.commands = queue is not None or self.entity == "site-commands"

    @property
    def name(self) -> str:
        return f"{self.entity}/{self.subscription}" if self.subscription else self.entity

    def handlers_for(self, message: Message) -> list[Handler]:
        found = self.handlers.get(type(message))
        if found is None:
            return []
        return list(found) if isinstance(found, (list, tuple)) else [found]


class MessageProcessor:
    """Runs one received message through decode → authorize → inbox → handler → settle."""

    def __init__(
        self,
        consumer: Consumer,
        *,
        bus: Bus,
        state: StateStore,
        dependencies: Mapping[str, Any],
        authorize: Authorizer | None,
        backoff: Callable[[int], float],
        stopping: threading.Event,
    ) -> None:
        self.consumer = consumer
        self.bus = bus
        self.state = state
        self.dependencies = dependencies
        self.authorize = authorize
        self.backoff = backoff
        self.stopping = stopping

    def process(self, received: ReceivedMessage) -> str:
        """Handle and settle one message; returns the outcome (for logs and tests)."""
        structlog.contextvars.bind_contextvars(
            message_id=received.message_id, correlation_id=received.correlation_id,
            type=received.subject, federation=None, site=None,
        )
        try:
            return self._process(received)
        except MessageLockLost:
            log.warning("lock lost before settlement; the broker will redeliver")
            return "lock_lost"
        finally:
            structlog.contextvars.unbind_contextvars(
                "message_id", "correlation_id", "type", "federation", "site"
            )

    def _process(self, received: ReceivedMessage) -> str:
        inbox_key = (self.consumer.name, received.message_id)
        seen = self.state.seen(*inbox_key)
        if seen is not None:
            if seen.outcome == "rejected":
                self.bus.dead_letter(received, seen.reason or "Rejected", seen.description)
            else:
                self.bus.complete(received)
            log.info("duplicate delivery settled without running the handler")
            return "duplicate"
        try:
            envelope = from_received(received)
        except DecodeError as exc:
            return self._reject(received, None, exc.reason, exc.description, [])
        structlog.contextvars.bind_contextvars(
            federation=envelope.federation, site=envelope.site, type=envelope.type
        )
        try:
            message = envelope.open()
        except UnknownMessageType as exc:
            return self._reject(received, envelope, "unknown_type", str(exc), [])
        except ValidationError as exc:
            errors = field_errors(exc)
            detail = "; ".join(f"{e['field']}: {e['problem']}" for e in errors)
            return self._reject(received, envelope, "invalid", detail, errors)
        handlers = self.consumer.handlers_for(message)
        if not handlers:
            if self.consumer.commands:
                return self._reject(
                    received, envelope, "unknown_type",
                    f"{envelope.type} is not handled on {self.consumer.name}", [],
                )
            self.bus.complete(received)  # a broad subscription: not every event is ours
            return "ignored"
        return self._handle(received, envelope, message, handlers, inbox_key)

    def _handle(self, received, envelope, message, handlers, inbox_key) -> str:
        with self.state.connect() as db:
            uow = UnitOfWork(db, envelope, store=self.state)
            try:
                if self.authorize is not None and isinstance(message, Command):
                    self.authorize(envelope, message, uow=uow)
                available = {**self.dependencies, "uow": uow, "envelope": envelope}
                for handler in handlers:
                    call_handler(handler, message, available)
            except Rejected as exc:
                uow.rollback()
                age = (datetime.now(UTC) - envelope.occurred_at).total_seconds()
                if age < exc.retry_for_s:
                    return self._retry_later(received, exc)
                return self._reject(received, envelope, exc.reason, exc.detail, exc.errors)
            except Exception as exc:  # noqa: BLE001 - any other failure is retried with backoff
                uow.rollback()
                return self._retry_later(received, exc)
            if not uow.commit(inbox_key):
                log.info("handled concurrently by another consumer; settling the copy")
        self.bus.complete(received)
        log.info("handled", delivery_count=received.delivery_count)
        return "handled"

    def _retry_later(self, received: ReceivedMessage, exc: Exception) -> str:
        delay = self.backoff(received.delivery_count)
        log.warning(
            "handler failed; abandoning for redelivery", error=repr(exc),
            delivery_count=received.delivery_count, backoff_s=round(delay, 2),
            exc_info=not isinstance(exc, (ConnectionError, TimeoutError, Rejected)),
        )
        self.stopping.wait(delay)  # the lock renewer keeps the lock while we back off
        self.bus.abandon(received)
        return "abandoned"

    def _reject(self, received, envelope: Envelope | None, reason, detail, errors) -> str:
        """Dead-letter now; for commands also answer with CommandRejected (atomically
        with the inbox row, so a redelivery neither re-runs nor re-announces it)."""
        detail = (detail or "")[:4000]
        log.warning("message rejected", reason=reason, detail=detail)
        cause = envelope or _stand_in_envelope(received)
        with self.state.unit_of_work(cause) as uow:
            if self.consumer.commands:
                uow.publish(CommandRejected(
                    federation=cause.federation,
                    command_type=cause.type,
                    command_id=received.message_id,
                    reason=reason,
                    detail=detail,
                    errors=[{"field": e["field"], "problem": e["problem"]} for e in errors],
                ))
            uow.commit((self.consumer.name, received.message_id), "rejected", reason, detail)
        self.bus.dead_letter(received, reason, detail)
        return "rejected"


def _stand_in_envelope(received: ReceivedMessage) -> Envelope:
    """What can be read off a message that has no valid envelope, so that its
    CommandRejected still names it as the cause."""
    props = {
        (k.decode() if isinstance(k, bytes) else str(k)): (
            v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v))
        for k, v in (received.application_properties or {}).items()
    }
    federation = props.get("federation")
    return Envelope(
        message_id=received.message_id,
        type=(props.get("type") or received.subject or "unknown")[:128],
        correlation_id=received.correlation_id or received.message_id,
        federation=federation[:128] if federation else None,
        issued_by=props.get("issued_by"),
    )


def exponential_backoff(base: float, cap: float) -> Callable[[int], float]:
    return lambda delivery_count: min(cap, base * 2 ** max(0, delivery_count - 1))

