"""The job-controller's own tables: federations it may reach, jobs waiting for their clients,
and the jobs it submitted."""
from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from arcflare.contracts.artifacts import ArtifactRef
from arcflare.contracts.authz import FederationAccess
from arcflare.contracts.commands import AdminSpec
from arcflare.contracts.envelope import Envelope

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
    # accepted SubmitJobs: each waits here until min_clients are connected (then it is in jobs)
    """
    CREATE TABLE waiting_jobs (
        command_id TEXT PRIMARY KEY,     -- the SubmitJob's id: the job's name until NVFlare's
        federation TEXT NOT NULL,
        name TEXT NOT NULL,
        command TEXT NOT NULL,           -- the SubmitJob's envelope, payload left out (JSON)
        job_dir TEXT NOT NULL,           -- built once, submitted as it is
        min_clients INTEGER NOT NULL,
        sites TEXT,                      -- JSON list; NULL: any site
        connected TEXT NOT NULL DEFAULT '[]',  -- as last published
        accepted_at REAL NOT NULL,       -- epoch seconds
        clients_deadline REAL NOT NULL,
        job_timeout_s REAL NOT NULL,     -- the job's own deadline, counted from its submission
        state TEXT NOT NULL DEFAULT 'waiting'  -- waiting | submitted | failed | aborted
    );
    CREATE INDEX waiting_jobs_state ON waiting_jobs (state)
    """,
    # the trace of the SubmitJob: its submission and the job's later events continue it
    """
    ALTER TABLE waiting_jobs ADD COLUMN traceparent TEXT;
    ALTER TABLE jobs ADD COLUMN traceparent TEXT
    """,
    # the admin's kit in the artifact store (ArtifactRef JSON); admin_kit_dir is no longer
    # written: a kit is fetched into the job-controller's own cache, never read from a path
    "ALTER TABLE federations ADD COLUMN admin_kit TEXT",
    # the server's certificate: a renewal gives the server a new key, which signs the FLARE
    # session's token; the record changes with it, so the session is opened again
    "ALTER TABLE federations ADD COLUMN server_cert_fingerprint TEXT",
]


@dataclass(frozen=True)
class FederationRecord:
    name: str
    #: the FLARE API logs in with this kit (None: recorded before kits travelled by reference)
    admin_kit: ArtifactRef | None
    admin_name: str
    server_endpoint: str
    sites: list[str]
    server_cert_fingerprint: str | None = None


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
    traceparent: str | None = None


@dataclass(frozen=True)
class WaitingJob:
    command_id: str
    federation: str
    name: str
    command: Envelope
    job_dir: Path
    min_clients: int
    sites: list[str] | None
    connected: list[str]
    accepted_at: float
    clients_deadline: float
    job_timeout_s: float
    state: str = "waiting"
    traceparent: str | None = None

    def connected_among(self, clients: set[str]) -> list[str]:
        """Of the connected clients, those this job may run on."""
        return sorted(clients & set(self.sites) if self.sites else clients)


def federation(db: sqlite3.Connection, name: str) -> FederationRecord | None:
    row = db.execute("SELECT * FROM federations WHERE name=?", (name,)).fetchone()
    if row is None:
        return None
    kit = ArtifactRef.model_validate_json(row["admin_kit"]) if row["admin_kit"] else None
    return FederationRecord(row["name"], kit, row["admin_name"], row["server_endpoint"],
                            json.loads(row["sites"]), row["server_cert_fingerprint"])


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


def add_waiting(db: sqlite3.Connection, job: WaitingJob) -> bool:
    """False if this command is waiting (or was) already."""
    return db.execute(
        "INSERT OR IGNORE INTO waiting_jobs (command_id, federation, name, command, job_dir,"
        " min_clients, sites, connected, accepted_at, clients_deadline, job_timeout_s,"
        " traceparent) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        (job.command_id, job.federation, job.name,
         job.command.model_copy(update={"payload": {}}).model_dump_json(by_alias=True),
         str(job.job_dir), job.min_clients, None if job.sites is None else json.dumps(job.sites),
         json.dumps(job.connected), job.accepted_at, job.clients_deadline, job.job_timeout_s,
         job.traceparent),
    ).rowcount == 1


def _waiting(row: sqlite3.Row) -> WaitingJob:
    return WaitingJob(**{
        **dict(row), "command": Envelope.model_validate_json(row["command"]),
        "job_dir": Path(row["job_dir"]), "connected": json.loads(row["connected"]),
        "sites": None if row["sites"] is None else json.loads(row["sites"]),
    })


def waiting_job(db: sqlite3.Connection, command_id: str) -> WaitingJob | None:
    row = db.execute("SELECT * FROM waiting_jobs WHERE command_id=?", (command_id,)).fetchone()
    return _waiting(row) if row else None


def waiting_jobs(db: sqlite3.Connection) -> list[WaitingJob]:
    rows = db.execute("SELECT * FROM waiting_jobs WHERE state='waiting' ORDER BY accepted_at")
    return [_waiting(r) for r in rows.fetchall()]


def end_wait(db: sqlite3.Connection, command_id: str, state: str) -> bool:
    """Move a waiting job to its next state; False if it no longer waits (another party
    — the watcher or an AbortJob — ended the wait first)."""
    return db.execute("UPDATE waiting_jobs SET state=? WHERE command_id=? AND state='waiting'",
                      (state, command_id)).rowcount == 1


def note_connected(db: sqlite3.Connection, command_id: str, connected: list[str]) -> bool:
    return db.execute("UPDATE waiting_jobs SET connected=? WHERE command_id=? AND state='waiting'",
                      (json.dumps(connected), command_id)).rowcount == 1


def add_job(db: sqlite3.Connection, waited: WaitingJob, job_id: str, *, sites: list[str],
            rounds: int | None) -> None:
    """The job NVFlare accepted for a waiting command; its deadline counts from now."""
    now = time.time()
    db.execute(
        "INSERT INTO jobs (job_id, federation, name, command_id, correlation_id, status, submitted_at,"
        " deadline, rounds, sites, traceparent) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (job_id, waited.federation, waited.name, waited.command_id,
         waited.command.correlation_id or waited.command_id, "SUBMITTED", now,
         now + waited.job_timeout_s, rounds, json.dumps(sites), waited.traceparent),
    )
