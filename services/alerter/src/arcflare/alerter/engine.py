"""Deciding when an event becomes an alert: conditions, for-duration, clearing, dedup.

Times are the events' own (occurred_at), so the decision does not depend on when
the alerter happened to receive them; for-duration alerts fall due on the clock
(`due(now)`, called by a background watcher).
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from arcflare.alerter.matching import fields_of, key_of, matches, render
from arcflare.alerter.rules import Rule, RuleBook
from arcflare.contracts.envelope import Envelope
from arcflare.runtime import get_logger

log = get_logger("arcflare.alerter")


def stamp(moment: datetime) -> str:
    """Fixed-width UTC text, so comparisons in SQL are comparisons in time."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@dataclass(frozen=True)
class Alert:
    rule: Rule
    key: str
    summary: str
    source_type: str
    source_message_id: str
    at: datetime
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def federation(self) -> str | None:
        return self.fields.get("federation")

    @property
    def site(self) -> str | None:
        value = self.fields.get("site") or self.fields.get("target")
        return value if value != "server" else None


class AlertEngine:
    def __init__(self, book: RuleBook) -> None:
        self.book = book

    def observe(self, db: sqlite3.Connection, envelope: Envelope) -> list[Alert]:
        """Alerts this event raises now; for-duration rules start (or stop) waiting."""
        if envelope.type == "AlertRaised":
            return []
        fields = fields_of(envelope)
        at = envelope.occurred_at
        self._clear(db, envelope.type, fields, at)
        raised = []
        for rule in self.book.rules_for(envelope.type):
            if not matches(rule.when, fields):
                continue
            key = key_of(rule.key, fields)
            if rule.for_ is not None:
                self._wait(db, rule, key, envelope, fields)
                continue
            alert = self._fire(db, rule, key, envelope.type, envelope.message_id, at, fields)
            if alert:
                raised.append(alert)
        return raised

    def due(self, db: sqlite3.Connection, now: datetime) -> list[Alert]:
        """For-duration alerts whose time has come (nothing cleared them)."""
        rows = db.execute(
            "SELECT rule, key, due_at, source_type, source_message_id, fields FROM pending"
            " WHERE due_at <= ? ORDER BY due_at", (stamp(now),)
        ).fetchall()
        raised = []
        for rule_name, key, due_at, source_type, source_id, fields in rows:
            db.execute("DELETE FROM pending WHERE rule = ? AND key = ?", (rule_name, key))
            rule = next((r for r in self.book.rules if r.name == rule_name), None)
            if rule is None:  # the rules file changed since: nothing to raise
                continue
            alert = self._fire(db, rule, key, source_type, source_id, parse_stamp(due_at),
                               json.loads(fields))
            if alert:
                raised.append(alert)
        return raised

    def _wait(self, db, rule: Rule, key: str, envelope: Envelope, fields: dict) -> None:
        started = stamp(envelope.occurred_at)
        cleared = db.execute("SELECT cleared_at FROM cleared WHERE rule = ? AND key = ?",
                             (rule.name, key)).fetchone()
        if cleared and cleared[0] >= started:
            return  # already cleared by a later event that arrived first
        assert rule.for_ is not None
        db.execute(
            "INSERT INTO pending VALUES (?,?,?,?,?,?,?) ON CONFLICT (rule, key) DO UPDATE SET"
            " started_at = excluded.started_at, due_at = excluded.due_at,"
            " source_type = excluded.source_type, source_message_id = excluded.source_message_id,"
            " fields = excluded.fields WHERE excluded.started_at < pending.started_at",
            (rule.name, key, started, stamp(envelope.occurred_at + rule.for_), envelope.type,
             envelope.message_id, json.dumps(fields, default=str)),
        )

    def _clear(self, db, event_type: str, fields: dict, at: datetime) -> None:
        for rule, clearing in self.book.clearing_rules(event_type):
            clears = (not matches(rule.when, fields) if clearing is None
                      else matches(clearing.when, fields))
            if not clears:
                continue
            key = key_of(rule.key, fields)
            db.execute(
                "INSERT INTO cleared VALUES (?,?,?) ON CONFLICT (rule, key) DO UPDATE SET"
                " cleared_at = max(cleared_at, excluded.cleared_at)", (rule.name, key, stamp(at)))
            gone = db.execute("DELETE FROM pending WHERE rule = ? AND key = ? AND started_at <= ?",
                              (rule.name, key, stamp(at))).rowcount
            if gone:
                log.info("pending alert cleared", rule=rule.name, key=key, by=event_type)

    def _fire(self, db, rule: Rule, key: str, source_type: str, source_id: str, at: datetime,
              fields: dict) -> Alert | None:
        last = db.execute("SELECT raised_at FROM last_raised WHERE rule = ? AND key = ?",
                          (rule.name, key)).fetchone()
        if last and abs(at - parse_stamp(last[0])) < rule.dedup:
            db.execute("UPDATE last_raised SET suppressed = suppressed + 1"
                       " WHERE rule = ? AND key = ?", (rule.name, key))
            log.info("alert suppressed as a duplicate", rule=rule.name, key=key)
            return None
        db.execute(
            "INSERT INTO last_raised (rule, key, raised_at) VALUES (?,?,?) ON CONFLICT (rule, key)"
            " DO UPDATE SET raised_at = excluded.raised_at", (rule.name, key, stamp(at)))
        return Alert(rule, key, render(rule.summary, fields), source_type, source_id, at, fields)
