"""The Bus port: what ArcFlare needs from a message broker, in Service Bus terms.

Two adapters implement it: the embedded SQLite broker (`arcflare.bus.sqlite`)
and Azure Service Bus (`arcflare.bus.azure`). The conformance suite
(`tests/conformance/bus_contract.py`, `BusContract`) runs the same tests
against each.

Addresses: a queue is named by itself ("provisioner"); a subscription by its
topic and subscription name (topic="events", subscription="ledger"). Sending
goes to a queue or a topic; receiving from a queue or a subscription.
"""
from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Self

from arcflare.contracts.topology import TOPOLOGY, Rule, Topology

PropertyValue = str | int | float | bool

#: application property of a resubmitted dead letter: the id of the first message it copies
ORIGINAL_MESSAGE_ID = "original_message_id"
#: application property of a resubmitted topic copy: the one subscription it is meant for
RESUBMITTED_TO = "resubmitted_to"


@dataclass(frozen=True)
class OutgoingMessage:
    body: bytes
    message_id: str
    subject: str | None = None
    correlation_id: str | None = None
    session_id: str | None = None
    content_type: str | None = "application/json"
    application_properties: dict[str, PropertyValue] = field(default_factory=dict)
    time_to_live: timedelta | None = None
    scheduled_enqueue_time: datetime | None = None


@dataclass(frozen=True)
class ReceivedMessage:
    body: bytes
    message_id: str
    subject: str | None
    correlation_id: str | None
    session_id: str | None
    content_type: str | None
    application_properties: dict[str, PropertyValue]
    sequence_number: int
    delivery_count: int
    enqueued_time: datetime
    #: the entity it was received from: "queue" or "topic/subscriptions/name"
    entity_path: str
    lock_token: str | None = None
    locked_until: datetime | None = None
    expires_at: datetime | None = None
    dead_letter_reason: str | None = None
    dead_letter_error_description: str | None = None
    dead_letter_source: str | None = None


class SubQueue(str, Enum):
    ACTIVE = "active"
    DEAD_LETTER = "deadletter"


@dataclass(frozen=True)
class EntityStats:
    entity_path: str
    kind: str  # "queue" | "subscription" | "topic"
    active: int
    scheduled: int
    dead_lettered: int
    locked: int = 0


class BusError(Exception):
    """Base of every error the port raises."""


class MessageTooLarge(BusError, ValueError):
    pass


class InvalidMessage(BusError, ValueError):
    """A message the broker refuses at send time (over-long id, missing session id...)."""


class EntityNotFound(BusError, LookupError):
    pass


class MessageLockLost(BusError):
    """Settling or renewing a message whose lock expired or was already settled."""


class SessionLockLost(BusError):
    """Using a session, or settling a message received through it, after the session was
    closed or its lock expired or was taken over."""


class MessageNotFound(BusError, LookupError):
    """No scheduled message has that sequence number (never had, fell due, was cancelled)."""


class BusUnavailable(BusError):
    """A transient failure: retry later."""


def entity_path(entity: str, subscription: str | None = None) -> str:
    return f"{entity}/subscriptions/{subscription}" if subscription else entity


class Session(abc.ABC):
    """An exclusive lock on one session of a session-enabled entity."""

    session_id: str

    @abc.abstractmethod
    def receive(self, max_messages: int = 1, max_wait: float = 0.0) -> list[ReceivedMessage]: ...

    @abc.abstractmethod
    def get_state(self) -> bytes | None: ...

    @abc.abstractmethod
    def set_state(self, state: bytes | None) -> None: ...

    @abc.abstractmethod
    def renew_lock(self) -> datetime: ...

    @abc.abstractmethod
    def close(self) -> None:
        """Release the session lock and, with it, the messages received and not settled:
        the next holder gets them first, in sequence order, their delivery count unchanged
        (Service Bus counts a delivery only when the session lock expires, not when its
        holder closes). Settling them afterwards raises SessionLockLost."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Bus(abc.ABC):
    """A Service Bus–shaped broker. Every method is safe to call from several threads."""

    # --- sending -----------------------------------------------------------
    @abc.abstractmethod
    def send(self, entity: str, messages: Sequence[OutgoingMessage]) -> None:
        """Send to a queue or topic, atomically. Duplicates (by message_id) are dropped."""

    @abc.abstractmethod
    def schedule(self, entity: str, message: OutgoingMessage, enqueue_at: datetime) -> int:
        """Schedule a message; returns the sequence number it can be cancelled by until it
        falls due. At that moment it is enqueued as if sent then: a new sequence number, its
        enqueued time, and its time to live counting from there (learn.microsoft.com:
        azure/service-bus-messaging/message-sequencing, "Scheduled messages", and
        message-expiration: expires-at = enqueued time + time to live). A topic's message
        stays with the topic until then, so a subscription made meanwhile gets a copy.

        A message id already seen inside the duplicate-detection window is accepted and
        dropped, as a send is, and still gets a fresh sequence number that names no message:
        cancelling it raises MessageNotFound and leaves the first copy scheduled. Sources:
        https://github.com/Azure/azure-service-bus/issues/265 (two schedules of one id
        inside the window return two distinct numbers; the second copy is dropped, the
        first survives) and https://github.com/Azure/azure-service-bus/issues/239 (the
        broker answers "Messages not found" to a number it does not hold). So a sequence
        number that was lost cannot be recovered by scheduling the same id again.
        """

    @abc.abstractmethod
    def cancel_scheduled(self, entity: str, sequence_number: int) -> None:
        """Withdraw a scheduled message before it falls due. A number that names no
        scheduled message of that entity (unknown, already due, already cancelled, or given
        for a dropped duplicate) raises MessageNotFound: the management operation
        `com.microsoft:cancel-scheduled-message` answers `com.microsoft:message-not-found`
        ("Messages not found. Missing sequence numbers: N",
        https://github.com/Azure/azure-service-bus/issues/239), which azure-servicebus 7.15
        raises as MessageNotFoundError."""

    # --- receiving (peek-lock) --------------------------------------------
    @abc.abstractmethod
    def receive(
        self,
        entity: str,
        subscription: str | None = None,
        *,
        max_messages: int = 1,
        max_wait: float = 0.0,
        sub_queue: SubQueue = SubQueue.ACTIVE,
    ) -> list[ReceivedMessage]:
        """Lock and return up to max_messages, waiting up to max_wait seconds for the first."""

    @abc.abstractmethod
    def accept_session(
        self,
        entity: str,
        subscription: str | None = None,
        *,
        session_id: str | None = None,
        max_wait: float = 0.0,
    ) -> Session | None:
        """Lock the given session, or the next one with messages; None if none within max_wait."""

    @abc.abstractmethod
    def complete(self, message: ReceivedMessage) -> None: ...

    @abc.abstractmethod
    def abandon(self, message: ReceivedMessage) -> None: ...

    @abc.abstractmethod
    def dead_letter(
        self, message: ReceivedMessage, reason: str, description: str | None = None
    ) -> None: ...

    @abc.abstractmethod
    def renew_lock(self, message: ReceivedMessage) -> datetime: ...

    # --- inspection ---------------------------------------------------------
    @abc.abstractmethod
    def peek(
        self,
        entity: str,
        subscription: str | None = None,
        *,
        max_messages: int = 32,
        sub_queue: SubQueue = SubQueue.ACTIVE,
        from_sequence_number: int | None = None,
    ) -> list[ReceivedMessage]:
        """Look without locking, in sequence order, from a sequence number onwards.

        Followers (`arcflare events --follow`, `Client.wait`) read by peeking, so
        any number of them disturbs no consumer.
        """

    @abc.abstractmethod
    def resubmit_dead_letter(
        self, entity: str, message_id: str, subscription: str | None = None
    ) -> str:
        """Send the dead-lettered message with this id (the oldest, if several) back for
        another try; returns the id of the copy.

        The copy has a new message id, so no duplicate detection can drop it, and carries
        the id it copies in the application property `original_message_id` (kept as it
        was when the dead letter was itself a resubmitted copy); body, subject,
        correlation id, session id, content type and every other application property are
        unchanged. The dead letter is completed only once the copy is on the entity: a
        failure before that leaves the dead letter as it was, one after it leaves both
        (never neither), and consumers' inboxes keyed on `original_message_id` handle the
        two once. A topic subscription's dead letter goes back to that subscription only
        (on Service Bus through the topic, marked `resubmitted_to`, which every
        subscription's rules admit only for itself: arcflare.bus.rules). MessageNotFound
        when no dead letter there has that id.
        """

    @abc.abstractmethod
    def stats(self) -> list[EntityStats]: ...

    @property
    def topology(self) -> Topology:
        """The entities as this bus has them: the consumer ends a message itself on its
        last allowed delivery, so it must know the entity's real max delivery count."""
        return TOPOLOGY

    @abc.abstractmethod
    def ensure_subscription(self, topic: str, subscription: str, rule: Rule | None) -> None:
        """Create a subscription (per-site ones are made when a site appears); idempotent."""

    def close(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
