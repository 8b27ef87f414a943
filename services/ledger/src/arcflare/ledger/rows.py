"""Order-independent writes: versioned upserts, monotonic maxima, capped appends."""
from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

from arcflare.contracts.envelope import Envelope


def dump_json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def timestamp(moment: datetime | None) -> str | None:
    """A UTC timestamp that sorts as text (fixed width, always microseconds)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def version(envelope: Envelope, rank: int = 0) -> str:
    """Total order of events: rank first (final states win), then time, then message id."""
    return f"{rank}|{timestamp(envelope.occurred_at)}|{envelope.message_id}"


def generation_version(envelope: Envelope, generation: int | None, rank: int) -> str:
    """The deployer's order of a participant's facts: its deployment generation, then the
    kind of fact within one generation. Time and id only break ties between equal facts."""
    return f"{generation or 0:010d}|{rank}|{version(envelope)}"


def upsert_group(
    db: sqlite3.Connection,
    table: str,
    key: dict[str, Any],
    version_column: str,
    version_value: str,
    values: dict[str, Any],
) -> None:
    """Write one column group unless the row already holds a newer version of it."""
    columns = {**key, **values, version_column: version_value}
    names = ", ".join(columns)
    marks = ", ".join("?" for _ in columns)
    updates = ", ".join(f"{c} = excluded.{c}" for c in [*values, version_column])
    db.execute(
        f"INSERT INTO {table} ({names}) VALUES ({marks}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates} "
        f"WHERE {table}.{version_column} IS NULL "
        f"OR excluded.{version_column} > {table}.{version_column}",
        list(columns.values()),
    )


def ensure_row(db: sqlite3.Connection, table: str, key: dict[str, Any]) -> None:
    names = ", ".join(key)
    marks = ", ".join("?" for _ in key)
    db.execute(f"INSERT OR IGNORE INTO {table} ({names}) VALUES ({marks})", list(key.values()))


def raise_to(db: sqlite3.Connection, table: str, key: dict[str, Any], column: str,
             value: str | None) -> None:
    """column = max(column, value): a fact that only moves forward (last heartbeat, connect)."""
    if value is None:
        return
    ensure_row(db, table, key)
    where = " AND ".join(f"{k} = ?" for k in key)
    db.execute(
        f"UPDATE {table} SET {column} = ? WHERE {where} AND ({column} IS NULL OR {column} < ?)",
        [value, *key.values(), value],
    )


def keep_newest(db: sqlite3.Connection, table: str, scope: dict[str, Any], cap: int) -> None:
    """Retention: keep the `cap` newest rows (by v) of a scope; the same set in any order."""
    where = " AND ".join(f"{k} = ?" for k in scope)
    db.execute(
        f"DELETE FROM {table} WHERE {where} AND v NOT IN "
        f"(SELECT v FROM {table} WHERE {where} ORDER BY v DESC LIMIT ?)",
        [*scope.values(), *scope.values(), cap],
    )
