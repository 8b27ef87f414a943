"""Peek-lock: claiming messages and settling them.

A claim runs under BEGIN IMMEDIATE, so competing consumers in any process are
serialised by SQLite's write lock and never lock the same row. Expired and
over-delivered rows met on the way are moved aside in the same transaction,
which is how "expired messages are never delivered" holds without a sweeper; what
was scheduled for the entity and has fallen due is enqueued first (scheduled.py).
"""
from __future__ import annotations

import sqlite3
import uuid

from arcflare.bus.port import BusUnavailable, MessageLockLost, ReceivedMessage, SessionLockLost
from arcflare.bus.sqlite import scheduled
from arcflare.bus.sqlite.catalogue import Catalogue
from arcflare.bus.sqlite.rows import COLUMNS, received
from arcflare.bus.sqlite.schema import (
    ACTIVE,
    DEAD_LETTERED,
    SCHEDULED,
    Entity,
    now_ms,
    transaction,
)

MAX_DELIVERY_REASON = "MaxDeliveryCountExceeded"
EXPIRED_REASON = "TTLExpiredException"


def ready(conn: sqlite3.Connection, entity: Entity, state: int,
          session_id: str | None = None) -> bool:
    """Is anything claimable right now? A read, so idle pollers never take the write lock."""
    now = now_ms()
    states = (ACTIVE, SCHEDULED) if state == ACTIVE else (state, state)
    sql = ("SELECT 1 FROM messages INDEXED BY messages_ready WHERE entity = ? "
           "AND state IN (?, ?) AND visible_at <= ?")
    args: tuple = (entity.path, *states, now)
    if session_id is not None:
        sql, args = sql + " AND session_id = ?", (*args, session_id)
    if conn.execute(sql + " LIMIT 1", args).fetchone() is not None:
        return True
    # a subscription's scheduled messages wait in its topic until they fall due
    return state == ACTIVE and entity.topic is not None and scheduled.due(
        conn, (entity.topic,), now)


def claim(
    conn: sqlite3.Connection,
    catalogue: Catalogue,
    entity: Entity,
    max_messages: int,
    *,
    state: int = ACTIVE,
    session_id: str | None = None,
    locked_until: int | None = None,
) -> list[ReceivedMessage]:
    now = now_ms()
    until = locked_until or now + entity.lock_ms
    taken: list[int] = []
    with transaction(conn):
        if state == ACTIVE:
            scheduled.activate(conn, catalogue, scheduled.sources(entity), now)
        while len(taken) < max_messages:
            candidates = _candidates(conn, entity.path, state, session_id, now,
                                     max_messages - len(taken))
            if not candidates:
                break
            locking = []
            for seq, expires_at, delivery_count in candidates:
                if state == ACTIVE and expires_at is not None and expires_at <= now:
                    expire(conn, entity, seq, now)
                elif state == ACTIVE and delivery_count >= entity.max_delivery_count:
                    dead_letter_row(conn, seq, entity.path, now, MAX_DELIVERY_REASON,
                                    f"delivered {delivery_count} times; the entity allows "
                                    f"{entity.max_delivery_count}")
                else:
                    locking.append((str(uuid.uuid4()), until, seq))
            # one statement for the pass: the next pass's query no longer sees these rows
            conn.executemany("UPDATE messages SET lock_token = ?, visible_at = ?, "
                             "delivery_count = delivery_count + 1 WHERE seq = ?", locking)
            taken.extend(seq for _, _, seq in locking)
        if not taken:
            return []
        rows = conn.execute(
            f"SELECT {COLUMNS} FROM messages WHERE seq IN ({','.join('?' * len(taken))}) "
            "ORDER BY seq", taken,
        ).fetchall()
    return [received(row, locked=True) for row in rows]


def _candidates(conn, path, state, session_id, now, limit) -> list[tuple]:
    sql = ("SELECT seq, expires_at, delivery_count FROM messages INDEXED BY messages_ready "
           "WHERE entity = ? AND state = ? AND visible_at <= ?")
    args: tuple = (path, state, now)
    if session_id is not None:
        sql, args = sql + " AND session_id = ?", (*args, session_id)
    return conn.execute(sql + " ORDER BY seq LIMIT ?", (*args, limit)).fetchall()


def expire(conn: sqlite3.Connection, entity: Entity, seq: int, now: int) -> None:
    if entity.dead_letter_on_expiration:
        dead_letter_row(conn, seq, entity.path, now, EXPIRED_REASON,
                        "the message's time to live elapsed before it was received")
    else:
        conn.execute("DELETE FROM messages WHERE seq = ?", (seq,))


def dead_letter_row(conn, seq: int, source: str, now: int, reason: str,
                    description: str | None) -> None:
    conn.execute(
        "UPDATE messages SET state = ?, visible_at = ?, lock_token = NULL, dl_reason = ?, "
        "dl_description = ?, dl_source = ? WHERE seq = ?",
        (DEAD_LETTERED, now, reason, description, source, seq),
    )


def _through_session(conn, entity: Entity, message: ReceivedMessage) -> bool:
    """Was it received through a session? (A session queue's dead letters are not.)"""
    if not entity.requires_session:
        return False
    row = conn.execute("SELECT state FROM messages WHERE seq = ?",
                       (message.sequence_number,)).fetchone()
    return row is None or row[0] != DEAD_LETTERED


def _locked_row(conn, entity: Entity, message: ReceivedMessage, now: int) -> sqlite3.Row:
    if not message.lock_token:
        raise MessageLockLost(
            f"message {message.message_id} was peeked, not received; only a locked message "
            "can be settled"
        )
    row = conn.execute(
        "SELECT state, delivery_count, visible_at FROM messages WHERE seq = ? "
        "AND lock_token = ? AND visible_at > ?",
        (message.sequence_number, message.lock_token, now),
    ).fetchone()
    if row is not None:
        return row
    if _through_session(conn, entity, message):
        # its lock was its session's: closing the session or losing it ends both
        raise SessionLockLost(
            f"message {message.message_id} (sequence {message.sequence_number}) came through "
            f"session {message.session_id!r}, which was closed or whose lock expired")
    raise MessageLockLost(
        f"the lock on message {message.message_id} (sequence {message.sequence_number}) "
        "expired or the message was already settled")


def complete(conn: sqlite3.Connection, entity: Entity, message: ReceivedMessage) -> None:
    """One statement when the lock holds (the usual case: one write, no read before it); when
    it does not, the row is looked at to say why (lock expired, session lost, settled)."""
    now = now_ms()
    try:
        if message.lock_token and conn.execute(
                "DELETE FROM messages WHERE seq = ? AND lock_token = ? AND visible_at > ?",
                (message.sequence_number, message.lock_token, now)).rowcount:
            return
    except sqlite3.OperationalError as exc:  # as transaction(): busy past the timeout
        raise BusUnavailable(f"the broker file is busy: {exc}") from exc
    # the lock is not held (it cannot come back: a later `now` only narrows the match)
    _locked_row(conn, entity, message, now)  # raises, saying why
    raise MessageLockLost(f"the lock on message {message.message_id} is not held")


def abandon(conn: sqlite3.Connection, entity: Entity, message: ReceivedMessage) -> None:
    now = now_ms()
    with transaction(conn):
        row = _locked_row(conn, entity, message, now)
        # as Service Bus: the abandon that uses up the last delivery dead-letters at once
        if row["state"] == ACTIVE and row["delivery_count"] >= entity.max_delivery_count:
            dead_letter_row(conn, message.sequence_number, entity.path, now, MAX_DELIVERY_REASON,
                            f"delivered {row['delivery_count']} times; the entity allows "
                            f"{entity.max_delivery_count}")
        else:
            conn.execute(
                "UPDATE messages SET visible_at = ?, lock_token = NULL WHERE seq = ?",
                (now, message.sequence_number),
            )


def dead_letter(conn: sqlite3.Connection, entity: Entity, message: ReceivedMessage,
                reason: str, description: str | None) -> None:
    now = now_ms()
    with transaction(conn):
        _locked_row(conn, entity, message, now)
        dead_letter_row(conn, message.sequence_number, message.entity_path, now, reason,
                        description)


def renew_lock(conn: sqlite3.Connection, entity: Entity, message: ReceivedMessage) -> int:
    now = now_ms()
    with transaction(conn):
        row = _locked_row(conn, entity, message, now)
        if row["state"] == ACTIVE and entity.requires_session:
            return row["visible_at"]  # held as long as its session: renew the session
        until = now + entity.lock_ms
        conn.execute("UPDATE messages SET visible_at = ? WHERE seq = ?",
                     (until, message.sequence_number))
    return until
