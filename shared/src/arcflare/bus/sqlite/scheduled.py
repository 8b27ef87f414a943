"""Scheduled messages, held by the queue or topic they were sent to until they fall due.

As on Service Bus, a message that falls due is enqueued as if it were sent at that
moment: a new sequence number (so a follower peeking onwards from what it saw last
finds it), its due time as enqueued time, its time to live counting from there, and for
a topic one copy per subscription whose rules match it then (a subscription made in the
meantime included). The number `schedule` returned names the held row only; once the
message is enqueued, cancelling that number finds nothing, as on Service Bus.

Like expiry, this happens lazily: whoever is about to look at an entity (a claim, a
peek, stats, housekeeping) first enqueues what has fallen due there.
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable

from arcflare.bus.port import MessageNotFound
from arcflare.bus.sqlite.catalogue import Catalogue
from arcflare.bus.sqlite.rows import copy
from arcflare.bus.sqlite.schema import ACTIVE, SCHEDULED, Entity, now_ms, transaction


def sources(entity: Entity) -> tuple[str, ...]:
    """Where messages scheduled for `entity` wait: itself (a queue), or its topic (a
    subscription; itself too, for copies scheduled by an older broker version)."""
    return (entity.path, entity.topic) if entity.topic else (entity.path,)


def due(conn: sqlite3.Connection, paths: Iterable[str], now: int) -> bool:
    """Has anything fallen due there? A read, so an idle poller never takes the write lock."""
    return any(conn.execute(
        "SELECT 1 FROM messages INDEXED BY messages_ready WHERE entity = ? AND state = ? "
        "AND visible_at <= ? LIMIT 1", (path, SCHEDULED, now)).fetchone() for path in paths)


def activate(conn: sqlite3.Connection, catalogue: Catalogue, paths: Iterable[str],
             now: int) -> list[str]:
    """Enqueue what has fallen due in `paths`, inside the caller's write transaction;
    returns the entities that got a message."""
    touched: list[str] = []
    for path in paths:
        rows = conn.execute(
            "SELECT seq, visible_at, expires_at, subject, properties FROM messages "
            "WHERE entity = ? AND state = ? AND visible_at <= ? ORDER BY visible_at, seq",
            (path, SCHEDULED, now)).fetchall()
        if not rows:
            continue
        destinations = catalogue.destinations(conn, catalogue.entity(conn, path))
        for seq, due_at, own_expiry, subject, properties in rows:
            values = json.loads(properties)
            for destination, rules in destinations:
                if rules and not any(r.matches(subject, values) for r in rules):
                    continue
                expires = due_at + destination.ttl_ms
                copy(conn, seq, destination.path, state=ACTIVE, visible_at=due_at,
                     enqueued_at=due_at,
                     expires_at=expires if own_expiry is None else min(expires, own_expiry))
                touched.append(destination.path)
            conn.execute("DELETE FROM messages WHERE seq = ?", (seq,))
    return touched


def activate_everywhere(conn: sqlite3.Connection, catalogue: Catalogue) -> list[str]:
    now = now_ms()
    paths = [row[0] for row in conn.execute(
        "SELECT DISTINCT entity FROM messages WHERE state = ? AND visible_at <= ?",
        (SCHEDULED, now))]
    if not paths:
        return []
    with transaction(conn):
        return activate(conn, catalogue, paths, now)


def activate_for(conn: sqlite3.Connection, catalogue: Catalogue, entity: Entity) -> None:
    """Before reading `entity` without claiming (peek): enqueue what fell due for it."""
    now = now_ms()
    if due(conn, sources(entity), now):
        with transaction(conn):
            activate(conn, catalogue, sources(entity), now)


def cancel(conn: sqlite3.Connection, catalogue: Catalogue, entity: str,
           sequence_number: int) -> None:
    catalogue.entity(conn, entity)
    with transaction(conn):
        cancelled = conn.execute(
            "DELETE FROM messages WHERE state = ? AND visible_at > ? "
            # origin: the copies an older broker version scheduled into each subscription
            "AND ((seq = ? AND entity = ?) OR (origin = ? AND source = ?))",
            (SCHEDULED, now_ms(), sequence_number, entity, sequence_number, entity),
        ).rowcount
    if not cancelled:
        raise MessageNotFound(
            f"{entity} holds no scheduled message with sequence number {sequence_number}: "
            "it fell due, was cancelled, or was never scheduled there")
