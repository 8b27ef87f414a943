"""The read side: plain dicts, ready for JSON. Joins the agent's and the server's view."""
from __future__ import annotations

import json
import sqlite3
from typing import Any

#: the agent sees a process but the server never saw the client register (docs/architecture.md §8)
NEVER_REGISTERED = "process up, never registered: check server address/firewall/cert"


def _rows(db: sqlite3.Connection, sql: str, *args: object) -> list[dict[str, Any]]:
    cursor = db.execute(sql, args)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _drop_versions(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if not (k == "v" or k.endswith("_v"))}


def _json(row: dict[str, Any], *columns: str) -> dict[str, Any]:
    for column in columns:
        if row.get(column) is not None:
            row[column] = json.loads(row[column])
    return row


def federations(db: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = _rows(db, "SELECT * FROM federations ORDER BY name")
    return [_json(_drop_versions(r), "admins", "running_jobs", "observed_clients") for r in rows]


def federation(db: sqlite3.Connection, name: str) -> dict[str, Any] | None:
    found = [f for f in federations(db) if f["name"] == name]
    if found:
        fed = found[0]
    elif db.execute("SELECT 1 FROM sites WHERE federation = ? LIMIT 1", (name,)).fetchone():
        # sites heard from before (or without) the federation's own events: still show them
        fed = {"name": name, "lifecycle": None, "server_status": None, "observed_clients": None}
    else:
        return None
    fed["sites"] = sites(db, name, fed.get("observed_clients"))
    fed["jobs"] = jobs(db, name)
    fed["certificates"] = _rows(
        db, "SELECT participant, kind, fingerprint, not_after, days_left FROM certificates"
        " WHERE federation = ? ORDER BY participant, kind", name)
    return fed


def sites(db: sqlite3.Connection, name: str,
          observed_clients: list[str] | None = None) -> list[dict[str, Any]]:
    rows = _rows(
        db,
        "SELECT s.*, c.not_after AS cert_not_after, c.days_left AS cert_days_left"
        " FROM sites s LEFT JOIN certificates c ON c.federation = s.federation"
        " AND c.participant = s.site AND c.kind = 'client'"
        " WHERE s.federation = ? ORDER BY s.site",
        name,
    )
    return [_site_view(_json(_drop_versions(r), "compute"), observed_clients) for r in rows]


def _site_view(site: dict[str, Any], observed_clients: list[str] | None) -> dict[str, Any]:
    if observed_clients is None:
        site["server_view"] = "unknown"
    elif site["site"] in observed_clients:
        site["server_view"] = "registered"
    else:
        site["server_view"] = "not registered"
    agent_sees_process = site.get("health") in ("starting", "connected", "degraded")
    if agent_sees_process and site["server_view"] == "not registered" and not site["diagnosis"]:
        site["diagnosis"] = NEVER_REGISTERED
    return site


def jobs(db: sqlite3.Connection, name: str) -> list[dict[str, Any]]:
    rows = _rows(db, "SELECT * FROM jobs WHERE federation = ? ORDER BY submitted_at, job_id", name)
    return [_json(_drop_versions(r), "sites") for r in rows]


def job(db: sqlite3.Connection, name: str, job_id: str) -> dict[str, Any] | None:
    found = [j for j in jobs(db, name) if j["job_id"] == job_id]
    if not found:
        return None
    detail = found[0]
    detail["history"] = _rows(
        db, "SELECT status, occurred_at FROM job_status_history"
        " WHERE federation = ? AND job_id = ? ORDER BY v", name, job_id)
    detail["final_metrics"] = _rows(
        db, "SELECT site, key, value, step FROM job_metrics"
        " WHERE federation = ? AND job_id = ? ORDER BY site, key", name, job_id)
    return detail


def audit(db: sqlite3.Connection, federation: str | None = None,
          limit: int = 200) -> list[dict[str, Any]]:
    where = "a.command_id NOT IN (SELECT message_id FROM events)"
    args: list[object] = []
    if federation:
        where += " AND a.federation = ?"
        args.append(federation)
    rows = _rows(db, f"SELECT * FROM (SELECT a.* FROM audit a WHERE {where}"
                     " ORDER BY a.v DESC LIMIT ?) ORDER BY v", *args, limit)
    return [_drop_versions(r) for r in rows]


def alerts(db: sqlite3.Connection, federation: str | None = None,
           limit: int = 200) -> list[dict[str, Any]]:
    where, args = ("WHERE federation = ?", [federation]) if federation else ("", [])
    rows = _rows(db, f"SELECT * FROM (SELECT * FROM alerts {where} ORDER BY v DESC LIMIT ?)"
                     " ORDER BY v", *args, limit)
    return [_drop_versions(r) for r in rows]


def log_tails(db: sqlite3.Connection, name: str, site: str,
              limit: int = 20) -> list[dict[str, Any]]:
    rows = _rows(db, "SELECT * FROM (SELECT * FROM log_tails WHERE federation = ? AND site = ?"
                     " ORDER BY v DESC LIMIT ?) ORDER BY v", name, site, limit)
    return [_json(_drop_versions(r), "lines") for r in rows]


def flare_events(db: sqlite3.Connection, name: str, limit: int = 50) -> list[dict[str, Any]]:
    rows = _rows(db, "SELECT * FROM (SELECT * FROM flare_events WHERE federation = ?"
                     " ORDER BY v DESC LIMIT ?) ORDER BY v", name, limit)
    return [_json(_drop_versions(r), "detail") for r in rows]


def snapshot(db: sqlite3.Connection) -> dict[str, Any]:
    """Everything, for comparing two read models (replay tests, debugging)."""
    tables = ["events", "audit", "federations", "sites", "certificates", "jobs",
              "job_status_history", "job_metrics", "log_tails", "flare_events", "alerts"]
    return {
        t: sorted(_rows(db, f"SELECT * FROM {t}"), key=lambda r: json.dumps(r, default=str))
        for t in tables
    }
