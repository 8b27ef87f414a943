"""The broker's tables, its connections and the entities made from a Topology.

One SQLite file in WAL mode holds every entity. A message row lives in one
entity (a queue, or one subscription's copy of a topic message) and moves
between three states; a lock is a `lock_token` plus `visible_at` in the future,
so an expired lock needs no sweeper: the row simply becomes visible again.
"""
from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from arcflare.bus.port import BusUnavailable
from arcflare.contracts.topology import EntityOptions, Rule, Topology

ACTIVE, SCHEDULED, DEAD_LETTERED = 0, 1, 2

#: how long a writer waits for another process's transaction before giving up
BUSY_TIMEOUT_MS = 30_000

DDL = """
CREATE TABLE IF NOT EXISTS entities (
    path TEXT PRIMARY KEY,
    kind TEXT NOT NULL,              -- queue | topic | subscription
    topic TEXT,                      -- the topic of a subscription
    lock_ms INTEGER NOT NULL,
    max_delivery_count INTEGER NOT NULL,
    ttl_ms INTEGER NOT NULL,
    dead_letter_on_expiration INTEGER NOT NULL,
    requires_session INTEGER NOT NULL,
    duplicate_window_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS rules (
    subscription TEXT NOT NULL,
    name TEXT NOT NULL,
    subject TEXT,
    properties TEXT NOT NULL,        -- JSON object, every pair must match
    PRIMARY KEY (subscription, name)
);
CREATE TABLE IF NOT EXISTS messages (
    -- AUTOINCREMENT: a sequence number is never reused, so followers peeking
    -- from a sequence number never see an old number twice
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    entity TEXT NOT NULL,
    source TEXT NOT NULL,            -- the queue or topic it was sent to
    origin INTEGER,                  -- unused since scheduled messages wait in their
                                     -- queue or topic, kept for older broker files
    state INTEGER NOT NULL,
    visible_at INTEGER NOT NULL,     -- ms, in the future while locked or scheduled
    expires_at INTEGER,              -- ms, NULL = never
    lock_token TEXT,
    delivery_count INTEGER NOT NULL DEFAULT 0,
    enqueued_at INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    subject TEXT,
    correlation_id TEXT,
    session_id TEXT,
    content_type TEXT,
    properties TEXT NOT NULL,
    body BLOB NOT NULL,
    dl_reason TEXT,
    dl_description TEXT,
    dl_source TEXT
);
-- claims walk an entity's rows in sequence order and skip locked ones from
-- the index alone (visible_at is covered)
CREATE INDEX IF NOT EXISTS messages_ready ON messages (entity, state, seq, visible_at);
CREATE INDEX IF NOT EXISTS messages_expiry ON messages (state, expires_at);
CREATE INDEX IF NOT EXISTS messages_origin ON messages (origin) WHERE origin IS NOT NULL;
CREATE TABLE IF NOT EXISTS duplicates (
    entity TEXT NOT NULL,
    message_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (entity, message_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS duplicates_expiry ON duplicates (expires_at);
CREATE TABLE IF NOT EXISTS sessions (
    entity TEXT NOT NULL,
    session_id TEXT NOT NULL,
    state BLOB,
    lock_token TEXT,
    locked_until INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (entity, session_id)
) WITHOUT ROWID;
"""


def now_ms() -> int:
    return int(time.time() * 1000)


def ms(delta: timedelta) -> int:
    return int(delta.total_seconds() * 1000)


@dataclass(frozen=True)
class Entity:
    path: str
    kind: str
    topic: str | None
    lock_ms: int
    max_delivery_count: int
    ttl_ms: int
    dead_letter_on_expiration: bool
    requires_session: bool
    duplicate_window_ms: int

    @classmethod
    def of(cls, path: str, kind: str, topic: str | None, options: EntityOptions) -> Entity:
        return cls(
            path, kind, topic, ms(options.lock_duration), options.max_delivery_count,
            ms(options.default_ttl), options.dead_letter_on_expiration,
            options.requires_session, ms(options.duplicate_detection_window),
        )

    def row(self) -> tuple:
        return (self.path, self.kind, self.topic, self.lock_ms, self.max_delivery_count,
                self.ttl_ms, int(self.dead_letter_on_expiration), int(self.requires_session),
                self.duplicate_window_ms)


def connect(path: Path) -> sqlite3.Connection:
    # autocommit: every write opens its own BEGIN IMMEDIATE, reads see the latest commit
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000,
                           check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    # NORMAL in WAL survives any process crash (SIGKILL); only power loss can drop
    # the last commits
    conn.execute("PRAGMA synchronous = NORMAL")
    # readers never stop on a busy broker, so the WAL may not reset for a while; once it
    # does, shrink it back rather than keep its high-water mark on disk
    conn.execute("PRAGMA journal_size_limit = 16777216")
    return conn


def create(conn: sqlite3.Connection, topology: Topology) -> None:
    """Create the tables and the topology's entities; safe to race from many processes."""
    conn.execute("PRAGMA journal_mode = WAL")
    with transaction(conn):
        # not executescript: it would commit the open transaction
        for statement in DDL.split(";"):
            if statement.strip():
                conn.execute(statement)
        for entity, rules in _entities(topology):
            install(conn, entity, rules, replace_rules=True)


def install(conn: sqlite3.Connection, entity: Entity, rules: tuple[Rule, ...] | None,
            *, replace_rules: bool) -> None:
    conn.execute(
        "INSERT INTO entities VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(path) DO UPDATE SET "
        "lock_ms=excluded.lock_ms, max_delivery_count=excluded.max_delivery_count, "
        "ttl_ms=excluded.ttl_ms, dead_letter_on_expiration=excluded.dead_letter_on_expiration, "
        "requires_session=excluded.requires_session, "
        "duplicate_window_ms=excluded.duplicate_window_ms",
        entity.row(),
    )
    if rules is None:
        return
    if replace_rules:
        conn.execute("DELETE FROM rules WHERE subscription = ?", (entity.path,))
    conn.executemany(
        "INSERT OR REPLACE INTO rules VALUES (?,?,?,?)",
        [(entity.path, r.name, r.subject, json.dumps(r.properties, sort_keys=True))
         for r in rules],
    )


def _entities(topology: Topology):
    for queue in topology.queues:
        yield Entity.of(queue.name, "queue", None, queue.options), None
    for topic in topology.topics:
        yield Entity.of(topic.name, "topic", None, topic.options), None
        for sub in topic.subscriptions:
            path = f"{topic.name}/subscriptions/{sub.name}"
            yield Entity.of(path, "subscription", topic.name, sub.options), sub.rules


class transaction:
    """BEGIN IMMEDIATE ... COMMIT: takes the write lock up front, so two claimers
    never both read the same free row and then race to lock it."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            # busy past BUSY_TIMEOUT_MS: another process holds the write lock; retry later
            raise BusUnavailable(f"the broker file is busy: {exc}") from exc
        return self.conn

    def __exit__(self, exc_type, *exc: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
