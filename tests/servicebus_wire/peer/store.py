"""The test peer's broker state: queues, locks, sessions, schedules, dead letters.

Pure Python and touched only from the peer's reactor thread (tests read it through
`ServiceBusPeer.call`). It keeps the Service Bus rules the wire tests rely on: a lock
per delivery named by a GUID, delivery count that grows per lock, dead-lettering after
max delivery count, scheduled messages that appear at their time, one session locked
by one link at a time, released with its messages (uncounted) when that link closes.
A duplicate message id is dropped, yet given a fresh sequence number that names nothing;
cancelling a number that names no scheduled message is "message not found".
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from proton import Message


@dataclass
class Record:
    sequence_number: int
    message: Message
    enqueued_at: float
    visible_at: float
    session_id: str | None
    delivery_count: int = 0
    lock_token: uuid.UUID | None = None
    locked_until: float = 0.0
    locked_by: object | None = None  # the proton link holding the lock
    dead_letter_reason: str | None = None
    dead_letter_description: str | None = None


@dataclass
class Entity:
    name: str
    requires_session: bool = False
    lock_duration: float = 30.0
    max_delivery_count: int = 10
    active: list[Record] = field(default_factory=list)
    dead_letters: list[Record] = field(default_factory=list)
    #: session id -> the link holding its lock
    session_locks: dict[str, object] = field(default_factory=dict)
    session_state: dict[str, bytes] = field(default_factory=dict)
    seen_ids: set[str] = field(default_factory=set)


class LockLost(Exception):
    pass


class Store:
    def __init__(self) -> None:
        self.entities: dict[str, Entity] = {}
        self._sequence = 0
        self.completed: list[Record] = []

    def add(self, entity: Entity) -> None:
        self.entities[entity.name.lower()] = entity

    def entity(self, name: str) -> Entity:
        try:
            return self.entities[name.lower()]
        except KeyError:
            raise KeyError(f"no entity {name!r}") from None

    # --- sending ---------------------------------------------------------------
    def enqueue(self, entity: Entity, message: Message, visible_at: float | None = None) -> int:
        if message.id is not None and str(message.id) in entity.seen_ids:
            self._sequence += 1  # duplicate detection: accepted, dropped, numbered anyway
            return self._sequence
        if entity.requires_session and not message.group_id:
            raise ValueError("the entity requires sessions but the message has no session id")
        if message.id is not None:
            entity.seen_ids.add(str(message.id))
        self._sequence += 1
        now = time.time()
        entity.active.append(
            Record(self._sequence, message, now, visible_at or now, message.group_id)
        )
        return self._sequence

    def cancel(self, entity: Entity, sequence_number: int) -> bool:
        """False when no scheduled message has that number (unknown, due, cancelled)."""
        kept = [r for r in entity.active
                if not (r.sequence_number == sequence_number and r.visible_at > time.time())]
        cancelled, entity.active = len(kept) < len(entity.active), kept
        return cancelled

    # --- locking -------------------------------------------------------------------
    def next_available(self, entity: Entity, session_id: str | None) -> Record | None:
        now = time.time()
        for record in entity.active:
            if record.lock_token is None and record.visible_at <= now and (
                not entity.requires_session or record.session_id == session_id
            ):
                return record
        return None

    def lock(self, entity: Entity, record: Record, link: object) -> None:
        record.delivery_count += 1
        record.lock_token = uuid.uuid4()
        record.locked_until = time.time() + entity.lock_duration
        record.locked_by = link

    def available_session(self, entity: Entity) -> str | None:
        now = time.time()
        for record in entity.active:
            if (record.session_id and record.session_id not in entity.session_locks
                    and record.visible_at <= now):
                return record.session_id
        return None

    def find_locked(self, entity: Entity, token: uuid.UUID) -> Record:
        for record in [*entity.active, *entity.dead_letters]:
            if record.lock_token == token and record.locked_until > time.time():
                return record
        raise LockLost(f"the lock {token} is not held")

    # --- settling ------------------------------------------------------------------
    def complete(self, entity: Entity, record: Record) -> None:
        entity.active.remove(record)
        self.completed.append(record)

    def release(self, entity: Entity, record: Record, *, failed: bool) -> None:
        """Unlock; a failed delivery past max delivery count is dead-lettered."""
        if not failed:
            record.delivery_count -= 1
        record.lock_token, record.locked_by = None, None
        if record in entity.dead_letters:
            return  # a dead letter given back stays one
        if record.delivery_count >= entity.max_delivery_count:
            self.dead_letter(entity, record, "MaxDeliveryCountExceeded",
                             "Message could not be consumed after the maximum delivery attempts.")

    def dead_letter(self, entity: Entity, record: Record, reason: str | None,
                    description: str | None) -> None:
        entity.active.remove(record)
        record.lock_token, record.locked_by = None, None
        record.dead_letter_reason, record.dead_letter_description = reason, description
        entity.dead_letters.append(record)

    def renew(self, entity: Entity, token: uuid.UUID) -> float:
        record = self.find_locked(entity, token)
        record.locked_until = time.time() + entity.lock_duration
        return record.locked_until

    def expire_locks(self) -> None:
        now = time.time()
        for entity in self.entities.values():
            for record in [*entity.active, *entity.dead_letters]:
                if record.lock_token is not None and record.locked_until <= now:
                    self.release(entity, record, failed=True)

    def forget_link(self, link: object) -> None:
        """A closed link gives up its sessions, and the messages it received through them go
        back uncounted; other message locks live on until they expire."""
        for entity in self.entities.values():
            for sid in [s for s, held in entity.session_locks.items() if held == link]:
                del entity.session_locks[sid]
                for record in [r for r in entity.active if r.locked_by == link]:
                    self.release(entity, record, failed=False)

    def peek(self, entity: Entity, from_sequence: int, count: int) -> list[Record]:
        records = sorted(entity.active, key=lambda r: r.sequence_number)
        return [r for r in records if r.sequence_number >= from_sequence][:count]
