"""The reads behind the console's pages, built on the status queries: plain dicts for JSON.

A site's `state` sums up its health for people: up, degraded, down or unknown.
"""
from __future__ import annotations

import sqlite3
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from statistics import fmean
from typing import Any

from arcflare.ledger import queries
from arcflare.ledger.rows import timestamp

SITE_STATES = ("up", "degraded", "down", "unknown")
#: a participant's health word (the read model's `condition`) as people scan for it
_STATE_OF_CONDITION = {
    "connected": "up", "serving": "up", "running job": "up", "idle": "up",
    "starting": "degraded", "disconnected": "degraded", "misconfigured": "degraded",
    "degraded": "degraded",
    "crashed": "down", "stopped": "down", "failed": "down",
}
#: a site reporting itself under one of these names speaks for the whole federation
GLOBAL_SITES = ("server", "global")
#: how far back the overview counts alerts
RECENT_ALERTS = timedelta(hours=24)


def site_state(site: dict[str, Any]) -> str:
    """up, degraded, down or unknown (not deployed, no heartbeat yet, a word not known here);
    `removed` for a site that left the federation."""
    condition = site.get("condition") or site.get("health")
    if condition == "removed" or site.get("removed"):
        return "removed"
    return _STATE_OF_CONDITION.get(condition, "unknown")


def is_running(job: dict[str, Any]) -> bool:
    status = str(job.get("status") or "")
    return not status.startswith(("FINISHED", "FAILED"))


def federation_view(db: sqlite3.Connection, name: str) -> dict[str, Any] | None:
    """The status read of one federation, each site with its state and NVFlare version."""
    found = queries.federation(db, name)
    if found is None:
        return None
    versions = dict(db.execute(
        "SELECT site, nvflare_version FROM client_versions WHERE federation = ?", (name,)))
    for site in found.get("sites", []):
        site["state"] = site_state(site)
        site["nvflare_version"] = versions.get(site["site"])
    if isinstance(found.get("server"), dict):
        found["server"]["state"] = site_state({"condition": found["server"].get("health")})
    return found


def overview(db: sqlite3.Connection, readable: frozenset[str] | None) -> list[dict[str, Any]]:
    """One line per federation: sites by state, running jobs, recent alerts, the nearest
    certificate expiry."""
    since = timestamp(datetime.now(UTC) - RECENT_ALERTS)
    alerts = dict(db.execute("SELECT federation, COUNT(*) FROM alerts WHERE occurred_at >= ?"
                             " GROUP BY federation", (since,)))
    expiry = dict(db.execute("SELECT federation, MIN(not_after) FROM certificates"
                             " WHERE not_after IS NOT NULL GROUP BY federation"))
    names = [r[0] for r in db.execute(
        "SELECT name FROM federations UNION SELECT DISTINCT federation FROM sites ORDER BY 1")]
    lines = []
    for name in names:
        if readable is not None and name not in readable:
            continue
        fed = queries.federation(db, name)
        if fed is None:
            continue
        present = [s for s in fed.get("sites", []) if site_state(s) != "removed"]
        states = dict.fromkeys(SITE_STATES, 0)
        for site in present:
            states[site_state(site)] += 1
        lines.append({
            "name": name, "lifecycle": fed.get("lifecycle"),
            "server": (fed.get("server") or {}).get("health"),
            "engine": fed.get("engine"), "sites": states, "site_count": len(present),
            "jobs_running": sum(1 for j in fed.get("jobs", []) if is_running(j)),
            "jobs_total": len(fed.get("jobs", [])),
            "alerts_24h": alerts.get(name, 0),
            "nearest_cert_expiry": expiry.get(name),
        })
    return lines


def site_view(db: sqlite3.Connection, federation: str, site: str) -> dict[str, Any] | None:
    fed = federation_view(db, federation)
    found = [s for s in (fed or {}).get("sites", []) if s["site"] == site]
    if not found:
        return None
    detail = found[0]
    detail["federation"] = federation
    cursor = db.execute(
        "SELECT status, previous, diagnosis, occurred_at FROM health_history"
        " WHERE federation = ? AND site = ? ORDER BY v DESC LIMIT 100", (federation, site))
    names = [d[0] for d in cursor.description]
    detail["health_history"] = [dict(zip(names, row, strict=True)) for row in cursor]
    detail["jobs"] = [j for j in fed["jobs"] if not j.get("sites") or site in j["sites"]]
    return detail


def job_series(db: sqlite3.Connection, federation: str, job_id: str) -> dict[str, Any]:
    """Every metric of a job, round by round: a line per site, and a global line — what the
    server itself reported, else the mean of the sites at each round."""
    by_key: dict[str, dict[str, list[list[float]]]] = defaultdict(dict)
    for site, key, step, value in db.execute(
            "SELECT site, key, step, value FROM metric_points WHERE federation = ?"
            " AND job_id = ? ORDER BY key, site, step", (federation, job_id)):
        by_key[key].setdefault(site, []).append([step, value])
    metrics = {}
    for key, lines in by_key.items():
        reported = next((lines.pop(s) for s in GLOBAL_SITES if s in lines), None)
        metrics[key] = {"sites": lines,
                        "global": reported or _mean_by_step(lines),
                        "global_is_mean": reported is None}
    rounds = max((p[0] for lines in by_key.values() for line in lines.values() for p in line),
                 default=-1) + 1
    return {"federation": federation, "job_id": job_id, "rounds": rounds, "metrics": metrics}


def _mean_by_step(lines: dict[str, list[list[float]]]) -> list[list[float]]:
    steps: dict[float, list[float]] = defaultdict(list)
    for points in lines.values():
        for step, value in points:
            steps[step].append(value)
    return [[step, fmean(values)] for step, values in sorted(steps.items())]
