"""Inspection and administration: peek, stats, dead-letter resubmission and
subscriptions created at run time."""
from __future__ import annotations

import dataclasses
import json
import sqlite3
import uuid

from arcflare.bus.port import (
    ORIGINAL_MESSAGE_ID,
    RESUBMITTED_TO,
    EntityNotFound,
    EntityStats,
    MessageNotFound,
    ReceivedMessage,
)
from arcflare.bus.sqlite.catalogue import Catalogue
from arcflare.bus.sqlite.rows import COLUMNS, copy, received
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
    """In sequence order; expired rows are as good as gone, scheduled ones appear (with a
    new sequence number) once they fall due."""
    now = now_ms()
    sql = f"SELECT {COLUMNS} FROM messages WHERE entity = ? AND state = ? AND seq >= ?"
    args: tuple = (path, state, from_sequence_number or 0)
    if state == ACTIVE:
        sql, args = sql + " AND (expires_at IS NULL OR expires_at > ?)", (*args, now)
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


def resubmit_dead_letter(conn: sqlite3.Connection, entity: Entity, message_id: str) -> str:
    """The oldest dead letter with that id goes back to its entity (a subscription's to
    that subscription only) as a copy under a new id, in one transaction (see the port)."""
    now = now_ms()
    copy_id = str(uuid.uuid4())
    with transaction(conn):
        row = conn.execute(
            "SELECT seq, properties FROM messages WHERE entity = ? AND state = ? "
            "AND message_id = ? ORDER BY seq LIMIT 1",
            (entity.path, DEAD_LETTERED, message_id)).fetchone()
        if row is None:
            raise MessageNotFound(
                f"no dead-lettered message with message_id {message_id!r} in {entity.path}")
        properties = json.loads(row["properties"])
        properties.setdefault(ORIGINAL_MESSAGE_ID, message_id)
        if entity.kind == "subscription":
            properties[RESUBMITTED_TO] = entity.path.rsplit("/", 1)[1]  # as on Service Bus
        copy(conn, row["seq"], entity.path, state=ACTIVE, visible_at=now, enqueued_at=now,
             expires_at=now + entity.ttl_ms, message_id=copy_id,
             properties=json.dumps(properties, separators=(",", ":")))
        conn.execute("DELETE FROM messages WHERE seq = ?", (row["seq"],))
    return copy_id


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
