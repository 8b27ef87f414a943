"""One consumer: a queue or subscription, its handler table, and how each message ends.

Every received message ends in exactly one of:
- complete: handled, a redelivery of something already handled, or an event not ours;
- abandon after a backoff: a transient failure, while deliveries are left;
- dead-letter now, with a reason: it can never succeed (undecodable, unproven, forbidden,
  invalid, refused by its handler), or its last allowed delivery failed too
  (`RetriesExhausted`). Commands are then answered with CommandRejected or CommandFailed,
  so whoever waits for an outcome always gets one.
Nothing about one message can stop the consumer: any exception while admitting it is
permanent for that message alone (docs/architecture.md, "Delivery").
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from arcflare.bus.port import (
    ORIGINAL_MESSAGE_ID,
    Bus,
    MessageLockLost,
    ReceivedMessage,
    SessionLockLost,
)
from arcflare.contracts.base import Command, Message
from arcflare.contracts.envelope import Envelope
from arcflare.contracts.topology import TOPOLOGY, Topology
from arcflare.observability import messaging, metrics
from arcflare.runtime import rejection
from arcflare.runtime.admission import Admission, Admitted, Refused, inbox_id
from arcflare.runtime.errors import Rejected
from arcflare.runtime.inject import call_handler
from arcflare.runtime.logging import get_logger
from arcflare.runtime.state import StateStore, UnitOfWork

Handler = Callable[..., Any]
Authorizer = Callable[..., None]
log = get_logger("arcflare.runtime")
#: inbox outcomes a dead-letter resubmit may run again: the cause may have been fixed since
#: (a trust refusal is not among them: the same proof gives the same answer)
RERUNNABLE = frozenset({"failed", "rejected"})


@dataclass
class Consumer:
    entity: str
    subscription: str | None = None
    handlers: Mapping[type[Message], Handler] = field(default_factory=dict)
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

    def max_delivery_count(self, topology: Topology = TOPOLOGY) -> int:
        """The broker dead-letters after this many deliveries; the last one is ours to end."""
        if self.subscription:
            sub = topology.subscription(self.entity, self.subscription)
            topic = topology.topic(self.entity)
            options = sub.options if sub else (topic.options if topic else None)
        else:
            queue = topology.queue(self.entity)
            options = queue.options if queue else None
        return options.max_delivery_count if options else 10

    def handlers_for(self, message: Message) -> list[Handler]:
        found = self.handlers.get(type(message))
        return [] if found is None else [found]


class MessageProcessor:
    """Runs one received message through admit → inbox → authorize → handler → settle."""

    def __init__(
        self,
        consumer: Consumer,
        *,
        bus: Bus,
        state: StateStore,
        admission: Admission,
        dependencies: Mapping[str, Any],
        authorize: Authorizer | None,
        backoff: Callable[[int], float],
        stopping: threading.Event,
        service: str = "",
    ) -> None:
        self.consumer = consumer
        self.service = service
        self.bus = bus
        self.state = state
        self.admission = admission
        self.dependencies = dependencies
        self.authorize = authorize
        self.backoff = backoff
        self.stopping = stopping
        self.max_delivery_count = consumer.max_delivery_count(bus.topology)

    def process(self, received: ReceivedMessage) -> str:
        """Handle and settle one message, in its consumer span and counted in the metrics;
        returns the outcome (for logs and tests)."""
        consumer = self.consumer
        with messaging.processing(received, consumer.entity, consumer.subscription) as span, \
                metrics.processing(self.service, consumer.name, received.subject) as counted:
            outcome = self._process_logged(received)
            counted.ended(outcome)
            messaging.ended(span, outcome, str(received.subject)[:128], counted.reason)
        return outcome

    def _process_logged(self, received: ReceivedMessage) -> str:
        structlog.contextvars.bind_contextvars(
            message_id=received.message_id, correlation_id=received.correlation_id,
            type=received.subject, federation=None, site=None,
        )
        try:
            return self._process(received)
        except (MessageLockLost, SessionLockLost):
            log.warning("lock lost before settlement; the broker will redeliver")
            return "lock_lost"
        finally:
            structlog.contextvars.unbind_contextvars(
                "message_id", "correlation_id", "type", "federation", "site"
            )

    def _process(self, received: ReceivedMessage) -> str:
        inbox_key = (self.consumer.name, inbox_id(received))
        seen = self.state.seen(*inbox_key)
        rerun = seen is not None and seen.outcome in RERUNNABLE and _resubmitted(received) \
            and seen.reason not in rejection.TRUST_REASONS
        if seen is not None and not rerun:
            if seen.outcome == "handled":
                self.bus.complete(received)
            else:
                self._dead_letter(received, seen.reason or "Rejected", seen.description)
            log.info("duplicate delivery settled without running the handler")
            return "duplicate"
        try:
            admitted = self.admission.admit(received, command=bool(self.consumer.commands))
        except Refused as refused:
            return self._refuse(received, refused)
        except Exception as exc:
            log.exception("admitting the message failed")
            return self._refuse(received, Refused("Undecodable", f"{type(exc).__name__}: {exc}"))
        envelope, message = admitted.envelope, admitted.message
        structlog.contextvars.bind_contextvars(
            federation=envelope.federation, site=envelope.site, type=envelope.type
        )
        handlers = self.consumer.handlers_for(message)
        if not handlers:
            if self.consumer.commands:
                return self._refuse(received, Refused(
                    "unknown_type", f"{envelope.type} is not handled on {self.consumer.name}",
                    envelope=envelope, principal=admitted.principal))
            self.bus.complete(received)  # a broad subscription: not every event is ours
            return "ignored"
        return self._handle(received, admitted, handlers, inbox_key, replace=rerun)

    def _handle(self, received, admitted: Admitted, handlers, inbox_key, *, replace) -> str:
        envelope, message = admitted.envelope, admitted.message
        with self.state.connect() as db:
            uow = UnitOfWork(db, envelope, store=self.state)
            try:
                if self.authorize is not None and isinstance(message, Command):
                    self.authorize(envelope, message, uow=uow)
                available = {**self.dependencies, "uow": uow, "envelope": envelope}
                for handler in handlers:
                    call_handler(handler, message, available)
                # inside: a commit that fails (an event that cannot be serialized, the
                # database away) is a failed attempt like any other, never a dead loop
                committed = uow.commit(inbox_key, replace=replace)
            except Rejected as exc:
                uow.rollback()
                age = (datetime.now(UTC) - envelope.occurred_at).total_seconds()
                if age < exc.retry_for_s and not self._last_delivery(received):
                    return self._retry_later(received, exc, envelope)
                return self._refuse(received, Refused(
                    exc.reason, exc.detail, exc.errors, envelope=envelope,
                    principal=admitted.principal))
            except Exception as exc:  # noqa: BLE001 - any other failure is retried with backoff
                uow.rollback()
                return self._retry_later(received, exc, envelope)
        if not committed:
            log.info("handled concurrently by another consumer; settling the copy")
        self.bus.complete(received)
        log.info("handled", delivery_count=received.delivery_count)
        return "handled"

    def _last_delivery(self, received: ReceivedMessage) -> bool:
        return received.delivery_count >= self.max_delivery_count

    def _retry_later(self, received: ReceivedMessage, exc: Exception, envelope: Envelope) -> str:
        if self._last_delivery(received):
            return self._exhausted(received, exc, envelope)
        delay = self.backoff(received.delivery_count)
        log.warning(
            "handler failed; abandoning for redelivery", error=repr(exc),
            delivery_count=received.delivery_count, backoff_s=round(delay, 2),
            exc_info=not isinstance(exc, (ConnectionError, TimeoutError, Rejected)),
        )
        self.stopping.wait(delay)  # the lock renewer keeps the lock while we back off
        self.bus.abandon(received)
        return "abandoned"

    def _exhausted(self, received: ReceivedMessage, exc: Exception, envelope: Envelope) -> str:
        """The last delivery failed too: end it ourselves, with an outcome for commands, rather
        than leave it to the broker's silent MaxDeliveryCountExceeded."""
        detail = rejection.clip(f"{type(exc).__name__}: {exc}")
        log.error("retries exhausted; dead-lettering", error=repr(exc),
                  delivery_count=received.delivery_count)
        with self.state.unit_of_work(envelope) as uow:
            if self.consumer.commands:
                uow.publish(rejection.command_failed(envelope, received, detail))
            uow.commit((self.consumer.name, inbox_id(received)), "failed",
                       rejection.RETRIES_EXHAUSTED, detail, replace=True)
        self._dead_letter(received, rejection.RETRIES_EXHAUSTED, detail)
        return "exhausted"

    def _refuse(self, received: ReceivedMessage, refused: Refused) -> str:
        """Dead-letter now; announce it (CommandRejected for commands, MessageRefused for a
        failed proof of anything else) atomically with the inbox row, so a redelivery
        neither re-runs nor re-announces it."""
        detail = rejection.clip(refused.detail)
        log.warning("message refused", reason=refused.reason, detail=detail)
        cause = refused.envelope or rejection.stand_in_envelope(received)
        with self.state.unit_of_work(cause) as uow:
            for event in rejection.announcements(refused, cause, received,
                                                 command=bool(self.consumer.commands),
                                                 consumer=self.consumer.name):
                uow.publish(event)
            uow.commit((self.consumer.name, inbox_id(received)), "rejected", refused.reason,
                       detail, replace=True)
        metrics.rejected(refused.reason)
        self._dead_letter(received, refused.reason, detail)
        return "rejected"

    def _dead_letter(self, received: ReceivedMessage, reason: str, detail: str | None) -> None:
        self.bus.dead_letter(received, reason, detail)
        metrics.dead_lettered(reason)


def _resubmitted(received: ReceivedMessage) -> bool:
    props = received.application_properties or {}
    return any(k in (ORIGINAL_MESSAGE_ID, ORIGINAL_MESSAGE_ID.encode()) for k in props)


def exponential_backoff(base: float, cap: float) -> Callable[[int], float]:
    return lambda delivery_count: min(cap, base * 2 ** max(0, delivery_count - 1))
