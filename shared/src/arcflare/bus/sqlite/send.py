"""Sending: limits, duplicate detection, topic fan-out and scheduling, all in
one transaction per call so a batch is enqueued entirely or not at all."""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime

from arcflare.bus.port import EntityNotFound, InvalidMessage, MessageTooLarge, OutgoingMessage
from arcflare.bus.sqlite.catalogue import Catalogue
from arcflare.bus.sqlite.schema import ACTIVE, SCHEDULED, Entity, ms, now_ms, transaction

MAX_MESSAGE_BYTES = 256 * 1024
MAX_ID_LENGTH = 128


def message_size(message: OutgoingMessage) -> int:
    """Body plus application properties and headers, as Service Bus counts them."""
    headers = (message.message_id, message.subject, message.correlation_id,
               message.session_id, message.content_type)
    size = len(message.body) + sum(len(h.encode()) for h in headers if h)
    for key, value in message.application_properties.items():
        size += len(str(key).encode()) + len(str(value).encode())
    return size


def validate(target: Entity, message: OutgoingMessage) -> None:
    if not message.message_id:
        raise InvalidMessage("message_id is required; give every message a unique id")
    if len(message.message_id) > MAX_ID_LENGTH:
        raise InvalidMessage(
            f"message_id is {len(message.message_id)} characters; at most {MAX_ID_LENGTH} allowed"
        )
    if message.session_id is not None and len(message.session_id) > MAX_ID_LENGTH:
        raise InvalidMessage(
            f"session_id is {len(message.session_id)} characters; at most {MAX_ID_LENGTH} allowed"
        )
    if target.requires_session and not message.session_id:
        raise InvalidMessage(
            f"{target.path} requires sessions; session_id must be set on message "
            f"{message.message_id}"
        )
    size = message_size(message)
    if size > MAX_MESSAGE_BYTES:
        raise MessageTooLarge(
            f"message {message.message_id[:40]} is {size} bytes with its properties; "
            f"the limit is {MAX_MESSAGE_BYTES} bytes (256 KiB)"
        )
    for key, value in message.application_properties.items():
        if not isinstance(value, str | int | float | bool):
            raise InvalidMessage(
                f"application property {key!r} is a {type(value).__name__}; "
                "only str, int, float and bool are allowed"
            )


def send(
    conn: sqlite3.Connection,
    catalogue: Catalogue,
    entity: str,
    messages: Sequence[OutgoingMessage],
    enqueue_at: datetime | None = None,
) -> tuple[list[int], list[str]]:
    """Enqueue every message. Returns, per message, a sequence number (a scheduled one's,
    which cancels it; for an immediate one its first copy's, 0 when a duplicate or when no
    subscription matched), and the entities that may have received a copy (to ring their
    doorbells)."""
    target = catalogue.entity(conn, entity)
    if target.kind == "subscription":
        raise EntityNotFound(f"{entity!r} is a subscription; send to its topic instead")
    for message in messages:
        validate(target, message)
    now = now_ms()
    with transaction(conn):
        destinations = catalogue.destinations(conn, target)
        sequence_numbers = [
            _enqueue(conn, target, destinations, message, now, enqueue_at)
            for message in messages
        ]
    return sequence_numbers, [entity.path for entity, _ in destinations]


def _enqueue(conn, target, destinations, message, now, enqueue_at) -> int:
    duplicate = target.duplicate_window_ms > 0 and _seen(conn, target, message.message_id, now)
    due = _due(message, enqueue_at, now)
    if due > now:
        return _hold(conn, target, message, due, duplicate)
    if duplicate:
        return 0
    first = 0
    for destination, rules in destinations:
        if rules and not any(r.matches(message.subject, message.application_properties)
                             for r in rules):
            continue
        ttl = destination.ttl_ms
        if message.time_to_live is not None:
            ttl = min(ttl, ms(message.time_to_live))
        seq = _insert(conn, destination.path, target.path, message, ACTIVE, now, now + ttl)
        first = first or seq
    return first


def _hold(conn, target, message, due: int, duplicate: bool) -> int:
    """A scheduled message waits in the queue or topic it was sent to (see scheduled.py);
    its own time to live, if any, is kept as an expiry counted from when it falls due."""
    own_expiry = None if message.time_to_live is None else due + ms(message.time_to_live)
    seq = _insert(conn, target.path, target.path, message, SCHEDULED, due, own_expiry)
    if duplicate:
        # as Service Bus: a fresh number for the dropped copy, which names no message
        conn.execute("DELETE FROM messages WHERE seq = ?", (seq,))
    return seq


def _insert(conn, entity: str, source: str, message: OutgoingMessage, state: int,
            visible_at: int, expires_at: int | None) -> int:
    return conn.execute(
        "INSERT INTO messages (entity, source, state, visible_at, expires_at, enqueued_at, "
        "message_id, subject, correlation_id, session_id, content_type, properties, body) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (entity, source, state, visible_at, expires_at, visible_at, message.message_id,
         message.subject, message.correlation_id, message.session_id, message.content_type,
         json.dumps(message.application_properties, separators=(",", ":")), message.body),
    ).lastrowid


def _due(message: OutgoingMessage, enqueue_at: datetime | None, now: int) -> int:
    when = enqueue_at or message.scheduled_enqueue_time
    if when is None:
        return now
    if when.tzinfo is None:
        raise InvalidMessage("scheduled_enqueue_time must be timezone-aware (UTC)")
    return max(now, int(when.timestamp() * 1000))


def _seen(conn: sqlite3.Connection, target: Entity, message_id: str, now: int) -> bool:
    # an upsert that only overwrites an expired entry: no change = a live duplicate
    changed = conn.execute(
        "INSERT INTO duplicates VALUES (?,?,?) ON CONFLICT(entity, message_id) DO UPDATE "
        "SET expires_at = excluded.expires_at WHERE duplicates.expires_at <= ?",
        (target.path, message_id, now + target.duplicate_window_ms, now),
    ).rowcount
    return changed == 0
