"""Sessions: an exclusive, expiring lock on one session id of an entity.

Messages received through a session are locked until the session lock ends,
so a session that is lost (its holder killed) releases its messages with it,
and FIFO order holds because only the holder receives from the session. Closing
a session releases them at once, as Service Bus does when a session receiver
closes, without counting a delivery (only an expired session lock counts one).
"""
from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from datetime import datetime

from arcflare.bus.port import ReceivedMessage, Session, SessionLockLost
from arcflare.bus.sqlite import receive, scheduled
from arcflare.bus.sqlite.catalogue import Catalogue
from arcflare.bus.sqlite.doorbell import Doorbell
from arcflare.bus.sqlite.rows import at
from arcflare.bus.sqlite.schema import ACTIVE, SCHEDULED, Entity, now_ms, transaction
from arcflare.bus.sqlite.waiting import wait_for

Connect = Callable[[], sqlite3.Connection]

_NEXT_SESSION = (
    "SELECT m.session_id FROM messages m INDEXED BY messages_ready "
    "WHERE m.entity = ? AND m.state IN (?, ?) AND m.visible_at <= ? AND NOT EXISTS ("
    "  SELECT 1 FROM sessions s WHERE s.entity = m.entity AND s.session_id = m.session_id"
    "  AND s.locked_until > ?) ORDER BY m.seq LIMIT 1"
)


def accept(connect: Connect, doorbell: Doorbell, catalogue: Catalogue, entity: Entity,
           session_id: str | None, max_wait: float) -> SqliteSession | None:
    conn = connect()
    listener = doorbell.listener(entity.path) if max_wait > 0 else None

    def ready() -> bool:
        now = now_ms()
        if session_id is None:
            return conn.execute(_NEXT_SESSION, (entity.path, ACTIVE, SCHEDULED, now, now)
                                ).fetchone() is not None or (
                entity.topic is not None and scheduled.due(conn, (entity.topic,), now))
        return conn.execute(
            "SELECT 1 FROM sessions WHERE entity = ? AND session_id = ? AND locked_until > ?",
            (entity.path, session_id, now)).fetchone() is None

    locked = wait_for(conn, lambda: _lock(conn, catalogue, entity, session_id), ready,
                      max_wait, listener=listener)
    if not locked:
        return None
    return SqliteSession(connect, doorbell, catalogue, entity, *locked)


def _lock(conn: sqlite3.Connection, catalogue: Catalogue, entity: Entity,
          session_id: str | None) -> tuple[str, str, int] | None:
    now = now_ms()
    token, until = str(uuid.uuid4()), now + entity.lock_ms
    with transaction(conn):
        if session_id is None:
            scheduled.activate(conn, catalogue, scheduled.sources(entity), now)
            row = conn.execute(_NEXT_SESSION, (entity.path, ACTIVE, SCHEDULED, now, now)
                               ).fetchone()
            if row is None:
                return None
            session_id = row[0]
        changed = conn.execute(
            "INSERT INTO sessions (entity, session_id, lock_token, locked_until) "
            "VALUES (?,?,?,?) ON CONFLICT(entity, session_id) DO UPDATE SET "
            "lock_token = excluded.lock_token, locked_until = excluded.locked_until "
            "WHERE sessions.locked_until <= ?",
            (entity.path, session_id, token, until, now),
        ).rowcount
    return (session_id, token, until) if changed else None


class SqliteSession(Session):
    def __init__(self, connect: Connect, doorbell: Doorbell, catalogue: Catalogue,
                 entity: Entity, session_id: str, token: str, locked_until: int) -> None:
        self._connect = connect
        self._doorbell = doorbell
        self._catalogue = catalogue
        self._entity = entity
        self.session_id = session_id
        self._token = token
        self.locked_until = locked_until

    def _held(self, conn: sqlite3.Connection) -> None:
        row = conn.execute(
            "SELECT locked_until FROM sessions WHERE entity = ? AND session_id = ? "
            "AND lock_token = ? AND locked_until > ?",
            (self._entity.path, self.session_id, self._token, now_ms())).fetchone()
        if row is None:
            raise SessionLockLost(
                f"the lock on session {self.session_id!r} of {self._entity.path} expired "
                "or was released"
            )
        self.locked_until = row[0]

    def receive(self, max_messages: int = 1, max_wait: float = 0.0) -> list[ReceivedMessage]:
        conn = self._connect()

        def attempt() -> list[ReceivedMessage]:
            self._held(conn)
            return receive.claim(conn, self._catalogue, self._entity, max_messages,
                                 session_id=self.session_id, locked_until=self.locked_until)

        return wait_for(conn, attempt,
                        lambda: receive.ready(conn, self._entity, ACTIVE, self.session_id),
                        max_wait,
                        listener=self._doorbell.listener(self._entity.path) if max_wait else None)

    def get_state(self) -> bytes | None:
        conn = self._connect()
        self._held(conn)
        row = conn.execute("SELECT state FROM sessions WHERE entity = ? AND session_id = ?",
                           (self._entity.path, self.session_id)).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    def set_state(self, state: bytes | None) -> None:
        conn = self._connect()
        with transaction(conn):
            self._held(conn)
            conn.execute("UPDATE sessions SET state = ? WHERE entity = ? AND session_id = ?",
                         (state, self._entity.path, self.session_id))

    def renew_lock(self) -> datetime:
        conn = self._connect()
        now = now_ms()
        with transaction(conn):
            self._held(conn)
            until = now + self._entity.lock_ms
            conn.execute("UPDATE sessions SET locked_until = ? WHERE entity = ? "
                         "AND session_id = ?", (until, self._entity.path, self.session_id))
            # the messages it holds are locked as long as the session is
            conn.execute(
                "UPDATE messages SET visible_at = ? WHERE entity = ? AND session_id = ? "
                "AND state = ? AND lock_token IS NOT NULL AND visible_at > ?",
                (until, self._entity.path, self.session_id, ACTIVE, now))
        self.locked_until = until
        return at(until)

    def close(self) -> None:
        conn = self._connect()
        now = now_ms()
        with transaction(conn):
            released = conn.execute(
                "UPDATE sessions SET lock_token = NULL, locked_until = 0 WHERE entity = ? "
                "AND session_id = ? AND lock_token = ? AND locked_until > ?",
                (self._entity.path, self.session_id, self._token, now)).rowcount
            if released:  # still ours: what it holds is ours too, and goes back in order
                conn.execute(
                    "UPDATE messages SET lock_token = NULL, visible_at = ?, "
                    "delivery_count = delivery_count - 1 WHERE entity = ? AND session_id = ? "
                    "AND state = ? AND lock_token IS NOT NULL AND visible_at > ?",
                    (now, self._entity.path, self.session_id, ACTIVE, now))
        # the session and its messages are up for grabs by whoever waits for one
        self._doorbell.ring([self._entity.path])
