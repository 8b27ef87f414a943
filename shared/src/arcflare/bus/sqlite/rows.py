"""Message rows as the port's ReceivedMessage."""
from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime

from arcflare.bus.port import ReceivedMessage

COLUMNS = (
    "seq, entity, visible_at, expires_at, lock_token, delivery_count, enqueued_at, "
    "message_id, subject, correlation_id, session_id, content_type, properties, body, "
    "dl_reason, dl_description, dl_source"
)


def at(milliseconds: int | None) -> datetime | None:
    return None if milliseconds is None else datetime.fromtimestamp(milliseconds / 1000, UTC)


def received(row: sqlite3.Row, *, locked: bool) -> ReceivedMessage:
    return ReceivedMessage(
        body=bytes(row["body"]),
        message_id=row["message_id"],
        subject=row["subject"],
        correlation_id=row["correlation_id"],
        session_id=row["session_id"],
        content_type=row["content_type"],
        application_properties=json.loads(row["properties"]),
        sequence_number=row["seq"],
        delivery_count=row["delivery_count"],
        enqueued_time=at(row["enqueued_at"]),
        entity_path=row["entity"],
        lock_token=row["lock_token"] if locked else None,
        locked_until=at(row["visible_at"]) if locked else None,
        expires_at=at(row["expires_at"]),
        dead_letter_reason=row["dl_reason"],
        dead_letter_error_description=row["dl_description"],
        dead_letter_source=row["dl_source"],
    )


def copy(conn: sqlite3.Connection, seq: int, entity: str, *, state: int, visible_at: int,
         enqueued_at: int, expires_at: int | None, message_id: str | None = None,
         properties: str | None = None) -> int:
    """A new row (a new sequence number) with the message of row `seq`; returns its seq."""
    return conn.execute(
        "INSERT INTO messages (entity, source, state, visible_at, expires_at, enqueued_at, "
        "message_id, subject, correlation_id, session_id, content_type, properties, body) "
        "SELECT ?, source, ?, ?, ?, ?, COALESCE(?, message_id), subject, correlation_id, "
        "session_id, content_type, COALESCE(?, properties), body FROM messages WHERE seq = ?",
        (entity, state, visible_at, expires_at, enqueued_at, message_id, properties, seq),
    ).lastrowid
