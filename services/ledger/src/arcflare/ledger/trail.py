"""The audit trail as people read it: one entry per command, with the events it caused.

Who: the person a command was issued by (`on_behalf_of` of its outcome, carried by the
runtime from the command's proven issuer, or the outcome's `issued_by` when that is a
person); a command that a service sent by itself inside someone's flow (auto-deploy) is
the service's, with that person alongside. A refused command names the identity its
signature proved and the one it claimed, nothing else: its issuer is what is in doubt.
How long: from the command's first outcome to the last event it caused (the ledger sees
events, not the command itself).
"""
from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from arcflare.contracts.senders import EVENT_OWNERS

#: when no event of a command names its type alone, what its events together say
_BY_SIBLINGS = [("SiteProvisioned", "AddSite"), ("SiteStopped", "StopSite"),
                ("JobCompleted", "AbortJob"), ("JobStatusChanged", "AbortJob")]


def _rows(db: sqlite3.Connection, sql: str, *args: object) -> list[dict[str, Any]]:
    cursor = db.execute(sql, args)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def commands(db: sqlite3.Connection, federation: str | None = None,
             limit: int = 200) -> list[dict[str, Any]]:
    """The newest `limit` commands, oldest first, each with its events oldest first."""
    where = "command_id NOT IN (SELECT message_id FROM events)"
    args: list[object] = []
    if federation:
        where += " AND federation = ?"
        args.append(federation)
    rows = _rows(
        db, f"WITH chosen AS (SELECT command_id, MIN(v) AS first_v FROM audit WHERE {where}"
            " GROUP BY command_id ORDER BY first_v DESC LIMIT ?)"
            " SELECT a.* FROM audit a JOIN chosen USING (command_id)"
            " ORDER BY chosen.first_v, a.v", *args, limit)
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["command_id"], []).append(row)
    return [_command(command_id, events) for command_id, events in grouped.items()]


def _is_person(principal: str | None) -> bool:
    # principals of services, sites and bridges have a "kind:" prefix
    return bool(principal) and ":" not in principal


def _command(command_id: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    first, last = rows[0], rows[-1]
    outcome = next((o for o in ("rejected", "failed", "succeeded")
                    if any(r["outcome"] == o for r in rows)), "in progress")
    deciding = next((r for r in rows if r["outcome"] == outcome), first)
    refusal = next((r for r in rows if r["claimed_by"] or r["proven_by"]), None)
    person = next((r["on_behalf_of"] for r in rows if r["on_behalf_of"]), None) or next(
        (r["issued_by"] for r in rows if _is_person(r["issued_by"])), None)
    service = next((r["issued_by"] for r in rows
                    if (r["issued_by"] or "").startswith("service:")), None)
    if service is None and deciding["outcome_type"] in EVENT_OWNERS:
        service = f"service:{EVENT_OWNERS[deciding['outcome_type']]}"
    # a command sent by a service inside a flow someone else started carries that flow's
    # correlation id; one sent by a person starts its own flow
    automatic = any(r["correlation_id"] not in (None, command_id) for r in rows)
    if refusal is not None:
        actor, person = refusal["proven_by"], None
    else:
        actor = service if automatic or not person else person
    took = _seconds(first["occurred_at"], last["occurred_at"]) if len(rows) > 1 else None
    return {
        "command_id": command_id,
        "command_type": _command_type(rows),
        "federation": first["federation"],
        "outcome": outcome,
        "reason": deciding["reason"],
        "actor": actor,
        "on_behalf_of": person,
        "automatic": automatic,
        "claimed_by": refusal["claimed_by"] if refusal else None,
        "proven_by": refusal["proven_by"] if refusal else None,
        "issued_by": deciding["issued_by"],
        "correlation_id": first["correlation_id"],
        # the command's trace (OpenTelemetry), when it was traced: every event of it shares it
        "trace_id": next((r["trace_id"] for r in rows if r["trace_id"]), None),
        "message_id": deciding["message_id"],
        "outcome_type": deciding["outcome_type"],
        "occurred_at": first["occurred_at"],
        "finished_at": last["occurred_at"],
        "took_s": took,
        "events": [{"message_id": r["message_id"], "type": r["outcome_type"],
                    "occurred_at": r["occurred_at"], "outcome": r["outcome"],
                    "reason": r["reason"], "note": r["note"] or ""} for r in rows],
    }


def _command_type(rows: list[dict[str, Any]]) -> str | None:
    named = next((r["command_type"] for r in rows if r["command_type"]), None)
    if named:
        return named
    types = {r["outcome_type"] for r in rows}
    return next((command for event, command in _BY_SIBLINGS if event in types), None)


def _seconds(start: str, end: str) -> float:
    elapsed = datetime.fromisoformat(end) - datetime.fromisoformat(start)
    return round(elapsed.total_seconds(), 3)
