"""Inspection and administration: peek, stats, dead-letter resubmission and
subscriptions created at run time."""
from __future__ import annotations

import dataclasses
import json
import sqlite3

from arcflare.bus.port import EntityNotFound, EntityStats, ReceivedMessage
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
from arcflare.contracts.topology import Rule, Topology


def peek(conn: sqlite3.Connection, path: str, state: int, max_messages: int,
         from_sequence_number: int | None) -> list[ReceivedMessage]:
    now = now_ms()
    start = from_sequence_number or 0
    if state == DEAD_LETTERED:
        sql = f"SELECT {COLUMNS} FROM messages WHERE entity = ? AND state = ? AND seq >= ?"
        args: tuple = (path, DEAD_LETTERED, start)
    else:
        # expired rows are as good as gone; scheduled ones appear when they fall due
        sql = (f"SELECT {COLUMNS} FROM messages WHERE entity = ? AND seq >= ? "
               "AND (state = ? OR (state = ? AND visible_at <= ?)) "
               "AND (expires_at IS NULL OR expires_at > ?)")
        args = (path, start, ACTIVE, SCHEDULED, now, now)
    rows = conn.execute(sql + " ORDER BY seq LIMIT ?", (*args, max_messages)).fetchall()
    return [received(row, locked=False) for row in rows]


def stats(conn: sqlite3.Connection) -> list[EntityStats]:
    now = now_ms()
    rows = conn.execute(
        "SELECT e.path, e.kind, "
        " COALESCE(SUM(m.state = ? OR (m.state = ? AND m.visible_at <= ?)), 0), "
        " COALESCE(SUM(m.state = ? AND m.visible_at > ?), 0), "
        " COALESCE(SUM(m.state = ?), 0), "
        " COALESCE(SUM(m.state = ? AND m.lock_token IS NOT NULL AND m.visible_at > ?), 0) "
        "FROM entities e LEFT JOIN messages m ON m.entity = e.path "
        "GROUP BY e.path, e.kind ORDER BY e.path",
        (ACTIVE, SCHEDULED, now, SCHEDULED, now, DEAD_LETTERED, ACTIVE, now),
    ).fetchall()
    return [EntityStats(path, kind, active, scheduled, dead, locked)
            for path, kind, active, scheduled, dead, locked in rows]


def resubmit_dead_letter(conn: sqlite3.Connection, entity: Entity, message_id: str) -> None:
    now = now_ms()
    with transaction(conn):
        rows = conn.execute(
            "SELECT seq FROM messages WHERE entity = ? AND state = ? AND message_id = ? "
            "ORDER BY seq", (entity.path, DEAD_LETTERED, message_id)).fetchall()
        if not rows:
            raise EntityNotFound(
                f"no dead-lettered message with message_id {message_id!r} in {entity.path}")
        for (seq,) in rows:
            # a new sequence number, so followers peeking onwards see it again
            conn.execute(
                "INSERT INTO messages (entity, source, state, visible_at, expires_at, "
                "enqueued_at, message_id, subject, correlation_id, session_id, content_type, "
                "properties, body) SELECT entity, source, ?, ?, ?, ?, message_id, subject, "
                "correlation_id, session_id, content_type, properties, body "
                "FROM messages WHERE seq = ?",
                (ACTIVE, now, now + entity.ttl_ms, now, seq))
            conn.execute("DELETE FROM messages WHERE seq = ?", (seq,))


def ensure_subscription(conn: sqlite3.Connection, catalogue: Catalogue, topology: Topology,
                        topic: str, name: str, rule: Rule | None) -> None:
    parent = catalogue.entity(conn, topic)
    if parent.kind != "topic":
        raise EntityNotFound(f"{topic!r} is not a topic; subscriptions belong to topics")
    path = f"{topic}/subscriptions/{name}"
    declared = topology.subscription(topic, name)
    entity = (Entity.of(path, "subscription", topic, declared.options) if declared
              else dataclasses.replace(parent, path=path, kind="subscription", topic=topic))
    with transaction(conn):
        conn.execute("INSERT OR IGNORE INTO entities VALUES (?,?,?,?,?,?,?,?,?)", entity.row())
        if rule is not None:
            conn.execute(
                "INSERT OR REPLACE INTO rules VALUES (?,?,?,?)",
                (path, rule.name, rule.subject, json.dumps(rule.properties, sort_keys=True)))
