"""What the console shows beyond the status read model: every round's metric value per site
(the charts), each site's health transitions (its history) and the NVFlare version the server
saw each client run.

Same rules as the rest of the read model: versioned upserts and capped appends, so replays,
duplicates and any arrival order end in the same rows.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Callable

from arcflare.contracts import events as e
from arcflare.contracts.base import Message
from arcflare.contracts.envelope import Envelope
from arcflare.ledger.rows import keep_newest, timestamp, upsert_group, version

CONSOLE_SCHEMA = """
CREATE TABLE IF NOT EXISTS metric_points (
    federation TEXT NOT NULL, job_id TEXT NOT NULL, site TEXT NOT NULL, key TEXT NOT NULL,
    step INTEGER NOT NULL, value REAL NOT NULL, v TEXT NOT NULL,
    PRIMARY KEY (federation, job_id, site, key, step)
);

CREATE TABLE IF NOT EXISTS health_history (
    message_id TEXT PRIMARY KEY, federation TEXT NOT NULL, site TEXT NOT NULL,
    status TEXT NOT NULL, previous TEXT, diagnosis TEXT, occurred_at TEXT NOT NULL,
    v TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS health_history_by_site ON health_history (federation, site, v);

CREATE TABLE IF NOT EXISTS client_versions (
    federation TEXT NOT NULL, site TEXT NOT NULL, nvflare_version TEXT, v TEXT,
    PRIMARY KEY (federation, site)
);
"""
#: health transitions kept per site (the newest)
HEALTH_HISTORY_PER_SITE = 200


def record_for_console(db: sqlite3.Connection, envelope: Envelope, event: Message) -> None:
    project = _PROJECTIONS.get(type(event))
    if project is not None:
        project(db, envelope, event)


def _metric_points(db: sqlite3.Connection, env: Envelope, ev: e.MetricsReported) -> None:
    # a step reported twice keeps its latest value (by the bridge's clock, then message id)
    for point in ev.points:
        upsert_group(
            db, "metric_points",
            {"federation": ev.federation, "job_id": ev.job_id, "site": ev.site,
             "key": point.key, "step": point.step},
            "v", f"{point.timestamp_ms:015d}|{env.message_id}", {"value": point.value})


def _health_changed(db: sqlite3.Connection, env: Envelope, ev: e.SiteHealthChanged) -> None:
    db.execute(
        "INSERT OR IGNORE INTO health_history (message_id, federation, site, status, previous,"
        " diagnosis, occurred_at, v) VALUES (?,?,?,?,?,?,?,?)",
        (env.message_id, ev.federation, ev.site, ev.status, ev.previous, ev.diagnosis,
         timestamp(env.occurred_at), version(env)))
    keep_newest(db, "health_history", {"federation": ev.federation, "site": ev.site},
                HEALTH_HISTORY_PER_SITE)


def _client_versions(db: sqlite3.Connection, env: Envelope,
                     ev: e.FederationStatusObserved) -> None:
    for client in ev.clients:
        if client.nvflare_version:
            upsert_group(db, "client_versions", {"federation": ev.federation, "site": client.name},
                         "v", version(env), {"nvflare_version": client.nvflare_version})


_PROJECTIONS: dict[type[Message], Callable[..., None]] = {
    e.MetricsReported: _metric_points,
    e.SiteHealthChanged: _health_changed,
    e.FederationStatusObserved: _client_versions,
}
