"""The deployer's own tables: what it knows about federations and sites, and what runs where.

A deployment row holds enough to find its process or job again after a restart:
pid + create time (a reused pid is not ours) or the Azure ML job name.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

from arcflare.contracts.artifacts import ArtifactRef
from arcflare.contracts.authz import FederationAccess
from arcflare.contracts.commands import AdminSpec
from arcflare.contracts.fields import ComputeSpec, DataInput
from arcflare.deployer.compute import SERVER, Placement, Target
from pydantic import TypeAdapter

MIGRATIONS = [
    """
    CREATE TABLE federations (
        name TEXT PRIMARY KEY,
        server_endpoint TEXT NOT NULL,
        server_kit_ref TEXT NOT NULL,
        admin_kit_ref TEXT NOT NULL,
        admin_name TEXT NOT NULL,
        server_compute TEXT NOT NULL,          -- ComputeSpec JSON
        auto_deploy INTEGER NOT NULL,
        admins TEXT NOT NULL DEFAULT '[]',     -- [AdminSpec] JSON, for authorization
        updated_at TEXT NOT NULL
    );
    CREATE TABLE sites (
        federation TEXT NOT NULL,
        name TEXT NOT NULL,
        org TEXT NOT NULL DEFAULT '',
        kit_ref TEXT NOT NULL,
        compute TEXT NOT NULL,                 -- ComputeSpec JSON
        want_deploy INTEGER NOT NULL DEFAULT 0, -- deploy once the server has been asked for
        removed INTEGER NOT NULL DEFAULT 0,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (federation, name)
    );
    CREATE TABLE deployments (
        federation TEXT NOT NULL,
        target TEXT NOT NULL,                  -- 'server' or a site name
        backend TEXT NOT NULL,
        handle TEXT NOT NULL,                  -- pid or Azure ML job name
        pid INTEGER, pgid INTEGER, create_time REAL, workspace TEXT,
        generation INTEGER NOT NULL,
        status TEXT NOT NULL,                  -- starting | running | stopped | crashed | failed
        reason TEXT,
        command_id TEXT, correlation_id TEXT,  -- the request whose outcome a poller reports
        updated_at TEXT NOT NULL,
        PRIMARY KEY (federation, target)
    );
    """,
    # the site's data inputs ([DataInput] JSON, from SiteProvisioned)
    "ALTER TABLE sites ADD COLUMN data TEXT NOT NULL DEFAULT '[]'",
    # who asked for a deployment, so an outcome the watcher reports later still names them
    ("ALTER TABLE deployments ADD COLUMN issued_by TEXT;"
     " ALTER TABLE deployments ADD COLUMN on_behalf_of TEXT"),
    # the kits in the artifact store (ArtifactRef JSON): what a deploy fetches and runs
    """
    ALTER TABLE federations ADD COLUMN server_kit TEXT;
    ALTER TABLE sites ADD COLUMN kit TEXT
    """,
    # the jobs NVFlare runs (JobSubmitted until JobCompleted or JobFailed), and the rolls of
    # renewed participants onto their new kits that wait for them (arcflare.deployer.rolls)
    """
    CREATE TABLE jobs (
        federation TEXT NOT NULL,
        job_id TEXT NOT NULL,
        sites TEXT NOT NULL DEFAULT '[]',      -- JSON list: the sites it runs on
        ended INTEGER NOT NULL DEFAULT 0,      -- kept: a late JobSubmitted must not revive it
        PRIMARY KEY (federation, job_id)
    );
    CREATE TABLE rolls (
        federation TEXT NOT NULL,
        participant TEXT NOT NULL,             -- 'server' or a site name
        fingerprint TEXT NOT NULL,             -- the renewed certificate it is rolled onto
        state TEXT NOT NULL,                   -- waiting (for jobs) | restarting (not serving yet)
        jobs TEXT NOT NULL DEFAULT '[]',       -- JSON list: the jobs it waits (or waited) for
        generation INTEGER,                    -- the deployment it was to replace
        cause TEXT NOT NULL,                   -- the CertificateRenewed's envelope, payload left out
        sites TEXT NOT NULL DEFAULT '[]',      -- JSON list: a server's sites restarted with it
        PRIMARY KEY (federation, participant)
    );
    """,
]
_SITE_DATA = TypeAdapter(list[DataInput])

LIVE = ("starting", "running")


def now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True)
class Deployment:
    federation: str
    target: str
    status: str
    placement: Placement
    command_id: str | None
    correlation_id: str | None
    issued_by: str | None = None
    on_behalf_of: str | None = None

    @property
    def live(self) -> bool:
        return self.status in LIVE


def save_federation(db: sqlite3.Connection, *, name: str, server_endpoint: str,
                    server_kit_ref: str, admin_kit_ref: str, admin_name: str,
                    server_compute: ComputeSpec, auto_deploy: bool,
                    admins: list[AdminSpec], server_kit: ArtifactRef | None = None) -> None:
    db.execute(
        "INSERT INTO federations (name, server_endpoint, server_kit_ref, admin_kit_ref, "
        "admin_name, server_compute, auto_deploy, admins, updated_at, server_kit) "
        "VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET "
        "server_endpoint=excluded.server_endpoint, server_kit_ref=excluded.server_kit_ref, "
        "admin_kit_ref=excluded.admin_kit_ref, admin_name=excluded.admin_name, "
        "server_compute=excluded.server_compute, auto_deploy=excluded.auto_deploy, "
        "admins=excluded.admins, updated_at=excluded.updated_at, server_kit=excluded.server_kit",
        (name, server_endpoint, server_kit_ref, admin_kit_ref, admin_name,
         server_compute.model_dump_json(), int(auto_deploy),
         json.dumps([a.model_dump(mode="json") for a in admins]), now(), _kit_json(server_kit)),
    )


def access(db: sqlite3.Connection, federation: str) -> FederationAccess | None:
    """Who may act on this federation, as the runtime's authorization check needs it."""
    row = db.execute("SELECT admins FROM federations WHERE name=?", (federation,)).fetchone()
    if row is None:
        return None
    orgs = {r["name"]: r["org"] for r in db.execute(
        "SELECT name, org FROM sites WHERE federation=? AND removed=0", (federation,))}
    return FederationAccess(admins=[AdminSpec.model_validate(a) for a in json.loads(row["admins"])],
                            site_orgs=orgs)


def save_site(db: sqlite3.Connection, *, federation: str, name: str, org: str, kit_ref: str,
              compute: ComputeSpec, want_deploy: bool, data: list[DataInput] | None = None,
              kit: ArtifactRef | None = None) -> None:
    db.execute(
        "INSERT INTO sites (federation, name, org, kit_ref, compute, want_deploy, removed, "
        "updated_at, data, kit) VALUES (?,?,?,?,?,?,0,?,?,?) ON CONFLICT(federation, name) "
        "DO UPDATE SET org=excluded.org, kit_ref=excluded.kit_ref, compute=excluded.compute, "
        "want_deploy=max(sites.want_deploy, excluded.want_deploy), removed=0, "
        "updated_at=excluded.updated_at, data=excluded.data, kit=excluded.kit",
        (federation, name, org, kit_ref, compute.model_dump_json(), int(want_deploy), now(),
         _SITE_DATA.dump_json(data or []).decode(), _kit_json(kit)),
    )


def _kit_json(kit: ArtifactRef | None) -> str | None:
    return kit.model_dump_json() if kit else None


def _kit(text: str | None) -> ArtifactRef | None:
    return ArtifactRef.model_validate_json(text) if text else None


def server_target(db: sqlite3.Connection, federation: str) -> Target | None:
    row = db.execute("SELECT * FROM federations WHERE name=?", (federation,)).fetchone()
    if row is None:
        return None
    return Target(federation, SERVER, row["server_kit_ref"],
                  ComputeSpec.model_validate_json(row["server_compute"]),
                  endpoint=row["server_endpoint"], kit=_kit(row["server_kit"]))


def site_row(db: sqlite3.Connection, federation: str, site: str) -> sqlite3.Row | None:
    return db.execute("SELECT * FROM sites WHERE federation=? AND name=?",
                      (federation, site)).fetchone()


def site_target(db: sqlite3.Connection, federation: str, site: str) -> Target | None:
    row = site_row(db, federation, site)
    if row is None or row["removed"]:
        return None
    fed = db.execute("SELECT server_endpoint FROM federations WHERE name=?",
                     (federation,)).fetchone()
    return Target(federation, site, row["kit_ref"], ComputeSpec.model_validate_json(row["compute"]),
                  endpoint=fed["server_endpoint"] if fed else None,
                  data=tuple(_SITE_DATA.validate_json(row["data"])), kit=_kit(row["kit"]))


def site_names(db: sqlite3.Connection, federation: str, *, wanted_only: bool = False) -> list[str]:
    sql = "SELECT name FROM sites WHERE federation=? AND removed=0"
    if wanted_only:
        sql += " AND want_deploy=1"
    return [r["name"] for r in db.execute(sql + " ORDER BY name", (federation,))]


def auto_deploy(db: sqlite3.Connection, federation: str) -> bool:
    row = db.execute("SELECT auto_deploy FROM federations WHERE name=?", (federation,)).fetchone()
    return bool(row and row["auto_deploy"])


def renew_kit(db: sqlite3.Connection, federation: str, participant: str, kit_ref: str,
              kit: ArtifactRef | None) -> bool:
    """The participant's next start uses this kit; False when the deployer knows no such
    participant (or it was removed)."""
    if participant == SERVER:
        sql = "UPDATE federations SET server_kit_ref=?, server_kit=?, updated_at=? WHERE name=?"
        args: tuple = (kit_ref, _kit_json(kit), now(), federation)
    else:
        sql = ("UPDATE sites SET kit_ref=?, kit=?, updated_at=? WHERE federation=? AND name=? "
               "AND removed=0")
        args = (kit_ref, _kit_json(kit), now(), federation, participant)
    return db.execute(sql, args).rowcount > 0


def mark_removed(db: sqlite3.Connection, federation: str, site: str) -> None:
    db.execute("UPDATE sites SET removed=1, want_deploy=0, updated_at=? "
               "WHERE federation=? AND name=?", (now(), federation, site))


def deployment(db: sqlite3.Connection, federation: str, target: str) -> Deployment | None:
    row = db.execute("SELECT * FROM deployments WHERE federation=? AND target=?",
                     (federation, target)).fetchone()
    return _deployment(row) if row else None


def deployments(db: sqlite3.Connection, *, federation: str | None = None,
                live_only: bool = False) -> list[Deployment]:
    sql, args = "SELECT * FROM deployments WHERE 1=1", []
    if federation is not None:
        sql, args = sql + " AND federation=?", [federation]
    if live_only:
        sql += " AND status IN ('starting', 'running')"
    return [_deployment(r) for r in db.execute(sql + " ORDER BY federation, target", args)]


def record(db: sqlite3.Connection, federation: str, target: str, status: str,
           placement: Placement | None = None, *, reason: str | None = None,
           command_id: str | None = None, correlation_id: str | None = None,
           generation: int | None = None, issued_by: str | None = None,
           on_behalf_of: str | None = None) -> None:
    """Upsert the deployment row; without a placement only status and reason change."""
    if placement is None:
        db.execute(
            "INSERT INTO deployments (federation, target, backend, handle, generation, status, "
            "reason, command_id, correlation_id, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT(federation, target) DO UPDATE SET status=excluded.status, "
            "reason=excluded.reason, updated_at=excluded.updated_at",
            (federation, target, "none", "", generation or 0, status, reason, command_id,
             correlation_id, now()),
        )
        return
    p = placement
    db.execute(
        "INSERT OR REPLACE INTO deployments VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (federation, target, p.backend, p.handle, p.pid, p.pgid, p.create_time, p.workspace,
         p.generation, status, reason, command_id, correlation_id, now(), issued_by,
         on_behalf_of),
    )


def _deployment(row: sqlite3.Row) -> Deployment:
    placement = Placement(backend=row["backend"], handle=row["handle"], pid=row["pid"],
                          pgid=row["pgid"], create_time=row["create_time"],
                          workspace=row["workspace"], generation=row["generation"],
                          # a deployment recorded as starting is still waiting to be announced
                          ready=row["status"] != "starting")
    return Deployment(row["federation"], row["target"], row["status"], placement,
                      row["command_id"], row["correlation_id"], row["issued_by"],
                      row["on_behalf_of"])
