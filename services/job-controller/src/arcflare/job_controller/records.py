"""The job-controller's own tables: federations it may reach, and the jobs it submitted."""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from arcflare.contracts.authz import FederationAccess
from arcflare.contracts.commands import AdminSpec

MIGRATIONS = [
    """
    CREATE TABLE federations (
        name TEXT PRIMARY KEY,
        admin_kit_dir TEXT NOT NULL,
        admin_name TEXT NOT NULL,
        server_endpoint TEXT NOT NULL,
        sites TEXT NOT NULL              -- JSON list
    );
    CREATE TABLE removed_sites (
        federation TEXT NOT NULL,
        site TEXT NOT NULL,
        PRIMARY KEY (federation, site)
    );
    CREATE TABLE jobs (
        job_id TEXT PRIMARY KEY,
        federation TEXT NOT NULL,
        name TEXT NOT NULL,
        command_id TEXT NOT NULL UNIQUE, -- the SubmitJob message id = NVFlare submit token
        correlation_id TEXT,
        status TEXT NOT NULL,            -- NVFlare's, verbatim
        finished INTEGER NOT NULL DEFAULT 0,
        submitted_at REAL NOT NULL,      -- epoch seconds
        deadline REAL NOT NULL,          -- the job is aborted after this
        rounds INTEGER,
        result_ref TEXT
    );
    CREATE INDEX jobs_unfinished ON jobs (finished, federation)
    """,
    # sites: JSON list of the sites the job runs on; abort_reason: why we aborted it, if we did
    """
    ALTER TABLE jobs ADD COLUMN sites TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE jobs ADD COLUMN abort_reason TEXT
    """,
    # the AbortJob that asked for the end: the terminal events are published as its outcome
    """
    ALTER TABLE jobs ADD COLUMN abort_command_id TEXT;
    ALTER TABLE jobs ADD COLUMN abort_correlation_id TEXT
    """,
    # who may submit and abort jobs (FederationProvisioned.admins, JSON)
    "ALTER TABLE federations ADD COLUMN admins TEXT NOT NULL DEFAULT '[]'",
]


@dataclass(frozen=True)
class FederationRecord:
    name: str
    admin_kit_dir: Path
    admin_name: str
    server_endpoint: str
    sites: list[str]


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    federation: str
    name: str
    command_id: str
    correlation_id: str | None
    status: str
    finished: bool
    submitted_at: float
    deadline: float
    rounds: int | None
    result_ref: str | None
    sites: list[str]
    abort_reason: str | None
    abort_command_id: str | None = None
    abort_correlation_id: str | None = None


def kit_dir(admin_kit_ref: str) -> Path:
    """`file:<abs path>` of the admin's kit (its folder, or that folder's startup/)."""
    path = Path(admin_kit_ref.removeprefix("file://").removeprefix("file:"))
    return path.parent if path.name == "startup" else path


def federation(db: sqlite3.Connection, name: str) -> FederationRecord | None:
    row = db.execute("SELECT * FROM federations WHERE name=?", (name,)).fetchone()
    if row is None:
        return None
    return FederationRecord(
        row["name"], Path(row["admin_kit_dir"]), row["admin_name"], row["server_endpoint"],
        json.loads(row["sites"]),
    )


def access(db: sqlite3.Connection, name: str) -> FederationAccess | None:
    """The federation's admins, for the role policy (job commands need no site orgs)."""
    row = db.execute("SELECT admins FROM federations WHERE name=?", (name,)).fetchone()
    if row is None:
        return None
    return FederationAccess([AdminSpec(**a) for a in json.loads(row["admins"])])


def federations(db: sqlite3.Connection) -> list[str]:
    return [r[0] for r in db.execute("SELECT name FROM federations ORDER BY name")]


def _job(row: sqlite3.Row) -> JobRecord:
    return JobRecord(**{**dict(row), "finished": bool(row["finished"]), "sites": json.loads(row["sites"])})


def job(db: sqlite3.Connection, job_id: str) -> JobRecord | None:
    row = db.execute("SELECT * FROM jobs WHERE job_id=?", (job_id,)).fetchone()
    return _job(row) if row else None


def job_by_command(db: sqlite3.Connection, command_id: str) -> JobRecord | None:
    row = db.execute("SELECT * FROM jobs WHERE command_id=?", (command_id,)).fetchone()
    return _job(row) if row else None


def unfinished_jobs(db: sqlite3.Connection) -> list[JobRecord]:
    rows = db.execute("SELECT * FROM jobs WHERE finished=0 ORDER BY submitted_at").fetchall()
    return [_job(r) for r in rows]
