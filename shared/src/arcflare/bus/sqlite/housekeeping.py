"""Purging what nobody receives: expired messages in subscriptions that are
only peeked (the `cli` follow subscription), old duplicate-detection entries
and released sessions without state; and enqueueing scheduled messages that fell
due where nobody looked. Runs at most every INTERVAL per bus,
piggy-backed on sends and idle waits; a read finds out first whether there is
anything to do, so an idle broker is never written to."""
from __future__ import annotations

import sqlite3
import threading
import time

from arcflare.bus.sqlite.catalogue import Catalogue
from arcflare.bus.sqlite.receive import expire
from arcflare.bus.sqlite.scheduled import activate_everywhere
from arcflare.bus.sqlite.schema import ACTIVE, now_ms, transaction

INTERVAL = 5.0
BATCH = 500


class Housekeeper:
    def __init__(self, catalogue: Catalogue) -> None:
        self._catalogue = catalogue
        self._next = 0.0
        self._lock = threading.Lock()

    def maybe_run(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            if time.monotonic() < self._next:
                return
            self._next = time.monotonic() + INTERVAL
        self.run(conn)

    def run(self, conn: sqlite3.Connection) -> None:
        activate_everywhere(conn, self._catalogue)
        now = now_ms()
        expired = conn.execute(
            "SELECT seq, entity FROM messages WHERE state = ? AND expires_at <= ? "
            "AND visible_at <= ? LIMIT ?", (ACTIVE, now, now, BATCH),
        ).fetchall()
        stale_duplicates = conn.execute(
            "SELECT 1 FROM duplicates WHERE expires_at <= ? LIMIT 1", (now,)).fetchone()
        stale_sessions = conn.execute(
            "SELECT 1 FROM sessions WHERE state IS NULL AND locked_until <= ? LIMIT 1", (now,)
        ).fetchone()
        if not (expired or stale_duplicates or stale_sessions):
            return
        with transaction(conn):
            for seq, path in expired:
                # re-checked inside the write lock: a consumer may have taken it meanwhile
                still = conn.execute(
                    "SELECT 1 FROM messages WHERE seq = ? AND state = ? AND visible_at <= ?",
                    (seq, ACTIVE, now)).fetchone()
                if still:
                    expire(conn, self._catalogue.entity(conn, path), seq, now)
            conn.execute("DELETE FROM duplicates WHERE expires_at <= ?", (now,))
            conn.execute("DELETE FROM sessions WHERE state IS NULL AND locked_until <= ?", (now,))
