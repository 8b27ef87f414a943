"""The read side: plain dicts, ready for JSON. Joins the agent's and the server's view.

Ages and days left are relative to `as_of` (now, unless a test says otherwise), which
every federation answer carries, so a reader computes "12 s ago" against the same clock.
"""
from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

from arcflare.ledger import trail
from arcflare.ledger.diagnosis import NEVER_REGISTERED, engine_of, server_verdict, site_verdict
from arcflare.ledger.participants import CA, SERVER
from arcflare.ledger.projections import is_final
from arcflare.ledger.rows import timestamp

__all__ = ["NEVER_REGISTERED"]
#: the federation's lifecycle, from its server's (the field predates the server's own row)
_FEDERATION_LIFECYCLE = {"running": "running", "deploy_failed": "server_failed",
                         "crashed": "server_crashed", "stopped": "stopped"}


def clock() -> datetime:
    """Now, for ages and days left (the one place a test freezes time)."""
    return datetime.now(UTC)


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


def days_left(not_after: str | None, as_of: datetime) -> int | None:
    """Whole days until a certificate expires (negative once it has)."""
    if not_after is None:
        return None
    return (datetime.fromisoformat(not_after) - as_of).days


def _federation_row(row: dict[str, Any]) -> dict[str, Any]:
    fed = _json(_drop_versions(row), "admins", "running_jobs", "observed_clients")
    server = fed.get("server_lifecycle")
    if server == "stopped" and fed.get("server_lifecycle_reason") == "torn down":
        fed["lifecycle"] = "torn_down"
    elif server is not None:
        fed["lifecycle"] = _FEDERATION_LIFECYCLE[server]
    else:
        fed["lifecycle"] = "provisioned" if fed.get("provisioned_at") else None
    fed["lifecycle_reason"] = fed.get("server_lifecycle_reason")
    fed["engine"] = engine_of(fed.get("server_status"), fed.get("running_jobs"))
    return fed


def federations(db: sqlite3.Connection) -> list[dict[str, Any]]:
    return [_federation_row(r) for r in _rows(db, "SELECT * FROM federations ORDER BY name")]


def federation(db: sqlite3.Connection, name: str,
               now: datetime | None = None) -> dict[str, Any] | None:
    as_of = now or clock()
    found = [_federation_row(r) for r in _rows(db, "SELECT * FROM federations WHERE name = ?",
                                               name)]
    if found:
        fed = found[0]
    elif db.execute("SELECT 1 FROM sites WHERE federation = ? LIMIT 1", (name,)).fetchone():
        # sites heard from before (or without) the federation's own events: still show them
        fed = _federation_row({"name": name, "server_status": None, "observed_clients": None})
    else:
        return None
    certificates = _rows(
        db, "SELECT participant, kind, fingerprint, not_after FROM certificates"
        " WHERE federation = ? ORDER BY participant, kind", name)
    for cert in certificates:
        cert["days_left"] = days_left(cert["not_after"], as_of)
    fed["as_of"] = timestamp(as_of)
    # what the server saw is only news while that server still runs
    current = fed.get("server_lifecycle") in ("running", None)
    fed["sites"] = sites(db, name, fed.get("observed_clients") if current else None, as_of)
    fed["jobs"] = jobs(db, name)
    fed["certificates"] = certificates
    fed["ca"] = next(({k: c[k] for k in ("fingerprint", "not_after", "days_left")}
                      for c in certificates if c["kind"] == "ca" and c["participant"] == CA),
                     None)
    fed["server"] = _server(fed, certificates)
    fed["engine"] = fed["server"]["engine"]
    return fed


def _server(fed: dict[str, Any], certificates: list[dict[str, Any]]) -> dict[str, Any]:
    cert = next((c for c in certificates if c["kind"] == "server"), {})
    present = [s for s in fed["sites"] if not s.get("removed")]
    running = fed.get("server_lifecycle") in ("running", None)
    registered = (sum(1 for s in present if s["server_view"] == "registered")
                  if running and fed.get("observed_clients") is not None else None)
    engine = _engine_now(fed) if running else None  # observations are of the process now up
    server = {
        "participant": SERVER, "endpoint": fed.get("server_endpoint"),
        "lifecycle": fed.get("server_lifecycle"),
        "lifecycle_reason": fed.get("server_lifecycle_reason"),
        "lifecycle_at": fed.get("server_lifecycle_at"), "handle": fed.get("server_handle"),
        "generation": fed.get("server_generation"),
        "engine": engine,
        "engine_status": fed.get("server_status"), "running_jobs": fed.get("running_jobs"),
        "observed_at": fed.get("observed_at"), "registered": registered,
        "expected": len(present), "cert_not_after": cert.get("not_after"),
        "cert_days_left": cert.get("days_left"),
    }
    server["health"], server["diagnosis_code"], server["diagnosis"] = server_verdict(
        server, registered, len(present))
    return server


def _engine_now(fed: dict[str, Any]) -> str | None:
    """The engine as last observed, except that a job the job-controller has since reported
    ended is no longer running: observations come every 30 s, job ends within one."""
    ended = {j["job_id"] for j in fed["jobs"] if is_final(j.get("status"))}
    observed = fed.get("running_jobs") or []
    still = [j for j in observed if j not in ended]
    status = "stopped" if observed and not still else fed.get("server_status")
    return engine_of(status, still)


def sites(db: sqlite3.Connection, name: str, observed_clients: list[str] | None = None,
          as_of: datetime | None = None) -> list[dict[str, Any]]:
    as_of = as_of or clock()
    rows = _rows(
        db,
        "SELECT s.*, c.not_after AS cert_not_after"
        " FROM sites s LEFT JOIN certificates c ON c.federation = s.federation"
        " AND c.participant = s.site AND c.kind = 'client'"
        " WHERE s.federation = ? ORDER BY s.site",
        name,
    )
    views = []
    for row in rows:
        site = _json(_drop_versions(row), "compute")
        site["removed"] = bool(site.get("removed"))
        site["cert_days_left"] = days_left(site["cert_not_after"], as_of)
        views.append(_site_view(site, observed_clients))
    return views


def _site_view(site: dict[str, Any], observed_clients: list[str] | None) -> dict[str, Any]:
    if observed_clients is None:
        site["server_view"] = "unknown"
    elif site["site"] in observed_clients:
        site["server_view"] = "registered"
    else:
        site["server_view"] = "not registered"
    site["condition"], site["diagnosis_code"], site["diagnosis"] = site_verdict(
        site, site["server_view"])
    return site


def jobs(db: sqlite3.Connection, name: str) -> list[dict[str, Any]]:
    rows = _rows(db, "SELECT * FROM jobs WHERE federation = ? AND submitted_as IS NULL"
                     " ORDER BY submitted_at, job_id", name)
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
    """One entry per command, oldest first, with the events it caused."""
    return trail.commands(db, federation, limit)


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
