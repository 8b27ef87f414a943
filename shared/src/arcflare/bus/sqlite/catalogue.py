"""Which entities exist and how they behave, as stored in the broker file.

Entities from the Topology never change while a process runs, so they are
cached; subscriptions made later by `ensure_subscription` (in any process) are
read from the file when first met, and a topic's subscriptions are re-read at
every send so a new per-site subscription receives the very next message.
"""
from __future__ import annotations

import json
import sqlite3
import threading

from arcflare.bus.port import EntityNotFound
from arcflare.bus.sqlite.schema import Entity
from arcflare.contracts.topology import Rule


class Catalogue:
    def __init__(self) -> None:
        self._entities: dict[str, Entity] = {}
        self._lock = threading.Lock()

    def entity(self, conn: sqlite3.Connection, path: str) -> Entity:
        found = self._entities.get(path)
        if found is None:
            row = conn.execute("SELECT * FROM entities WHERE path = ?", (path,)).fetchone()
            if row is None:
                raise EntityNotFound(f"no queue, topic or subscription named {path!r}")
            found = Entity(
                row["path"], row["kind"], row["topic"], row["lock_ms"],
                row["max_delivery_count"], row["ttl_ms"],
                bool(row["dead_letter_on_expiration"]), bool(row["requires_session"]),
                row["duplicate_window_ms"],
            )
            with self._lock:
                self._entities[path] = found
        return found

    def forget(self, path: str) -> None:
        with self._lock:
            self._entities.pop(path, None)

    def receivable(self, conn: sqlite3.Connection, entity: str, subscription: str | None) -> Entity:
        path = f"{entity}/subscriptions/{subscription}" if subscription else entity
        found = self.entity(conn, path)
        if found.kind == "topic":
            raise EntityNotFound(
                f"{entity!r} is a topic; receive from one of its subscriptions instead"
            )
        return found

    def destinations(self, conn: sqlite3.Connection,
                     target: Entity) -> list[tuple[Entity, list[Rule]]]:
        """Where a message sent to `target` goes: a queue's own rows, or one copy per
        subscription of a topic whose rules (none: everything) it matches."""
        if target.kind != "topic":
            return [(target, [])]
        return [(self.entity(conn, path), rules)
                for path, rules in self.subscriptions(conn, target.path)]

    @staticmethod
    def subscriptions(conn: sqlite3.Connection, topic: str) -> list[tuple[str, list[Rule]]]:
        rules: dict[str, list[Rule]] = {}
        for row in conn.execute(
            "SELECT e.path, r.name, r.subject, r.properties FROM entities e "
            "LEFT JOIN rules r ON r.subscription = e.path "
            "WHERE e.kind = 'subscription' AND e.topic = ? ORDER BY e.path", (topic,)
        ):
            subscription_rules = rules.setdefault(row[0], [])
            if row[1] is not None:
                subscription_rules.append(Rule(row[1], row[2], json.loads(row[3])))
        return list(rules.items())
