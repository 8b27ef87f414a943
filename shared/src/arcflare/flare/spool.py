"""A durable local queue for telemetry the bus could not take yet.

The bridge runs inside the NVFlare server; when the bus is unreachable its
messages go here and are replayed, oldest first, once the bus answers again.
A SQLite file, so a crash of the server job process loses nothing already
spooled, and several job processes of one federation can share it safely.
"""
from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

from arcflare.contracts.envelope import Envelope

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spooled (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL UNIQUE,
    envelope TEXT NOT NULL
)
"""


class Spool:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False,
                                   isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)

    def put(self, envelopes: Iterable[Envelope]) -> None:
        """Keep envelopes for later; one already spooled (same message id) is kept once."""
        rows = [(e.message_id, e.model_dump_json(by_alias=True)) for e in envelopes]
        with self._lock:
            self._db.executemany(
                "INSERT OR IGNORE INTO spooled (message_id, envelope) VALUES (?, ?)", rows)

    def peek(self, limit: int = 100) -> list[tuple[int, Envelope]]:
        """The oldest spooled envelopes with their sequence numbers (left in place)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, envelope FROM spooled ORDER BY seq LIMIT ?", (limit,)).fetchall()
        return [(seq, Envelope.model_validate_json(text)) for seq, text in rows]

    def remove(self, seqs: Iterable[int]) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM spooled WHERE seq = ?", [(s,) for s in seqs])

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM spooled").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
