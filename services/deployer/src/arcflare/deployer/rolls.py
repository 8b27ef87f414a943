"""Rolling a renewed participant onto its new kit: when it may restart, and what is owed.

A renewal (CertificateRenewed) points the participant's next start at its new kit at once.
If it runs, it is restarted from that kit — unless a job runs on it (on a site: a job that
runs on that site; on the server: any job of the federation). Then the renewal's option
decides: wait, and restart it once those jobs have ended, or refuse, and leave it on its old
certificate until it next starts. The jobs come from the job-controller's events (JobSubmitted
until JobCompleted or JobFailed), so the deployer asks no one.

A roll that waits is kept here with the CertificateRenewed that asked for it: the watcher
carries it out once the jobs are over, in that event's name, so its outcome is correlated
with the renewal like any other. So is a server that was restarted but does not listen yet:
the watcher announces the roll together with ServerDeployed.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field

from arcflare.contracts.envelope import Envelope
from arcflare.contracts.events import ParticipantRolled
from arcflare.deployer.compute import SERVER


@dataclass(frozen=True)
class Roll:
    federation: str
    participant: str
    fingerprint: str
    state: str  # waiting | restarting
    jobs: list[str]
    generation: int | None
    cause: Envelope
    #: a server's running sites, restarted with it (they must register with its new key)
    sites: list[str] = field(default_factory=list)


def rolled(roll: Roll) -> ParticipantRolled:
    """The roll's announcement once the participant runs on its new kit."""
    return ParticipantRolled(federation=roll.federation, participant=roll.participant,
                             fingerprint=roll.fingerprint, restarted=True,
                             generation=roll.generation, waited_for=roll.jobs,
                             sites_restarted=roll.sites)


def note_job(db: sqlite3.Connection, federation: str, job_id: str, sites: list[str]) -> None:
    db.execute("INSERT INTO jobs (federation, job_id, sites) VALUES (?,?,?) "
               "ON CONFLICT (federation, job_id) DO UPDATE SET sites=excluded.sites",
               (federation, job_id, json.dumps(sites)))


def end_job(db: sqlite3.Connection, federation: str, job_id: str) -> None:
    db.execute("INSERT INTO jobs (federation, job_id, ended) VALUES (?,?,1) "
               "ON CONFLICT (federation, job_id) DO UPDATE SET ended=1", (federation, job_id))


def jobs_on(db: sqlite3.Connection, federation: str, participant: str) -> list[str]:
    """The unfinished jobs a restart of this participant would cut short."""
    rows = db.execute("SELECT job_id, sites FROM jobs WHERE federation=? AND ended=0 "
                      "ORDER BY job_id", (federation,)).fetchall()
    return [r["job_id"] for r in rows
            if participant == SERVER or participant in json.loads(r["sites"])]


def hold(db: sqlite3.Connection, roll: Roll) -> None:
    """Keep a roll for the watcher (a later renewal of the same participant replaces it)."""
    db.execute(
        "INSERT OR REPLACE INTO rolls VALUES (?,?,?,?,?,?,?,?)",
        (roll.federation, roll.participant, roll.fingerprint, roll.state, json.dumps(roll.jobs),
         roll.generation,
         roll.cause.model_copy(update={"payload": {}}).model_dump_json(by_alias=True),
         json.dumps(roll.sites)))


def held(db: sqlite3.Connection, federation: str, participant: str) -> Roll | None:
    row = db.execute("SELECT * FROM rolls WHERE federation=? AND participant=?",
                     (federation, participant)).fetchone()
    return _roll(row) if row else None


def due(db: sqlite3.Connection) -> list[Roll]:
    """Waiting rolls none of whose jobs still runs."""
    waiting = [_roll(r) for r in db.execute("SELECT * FROM rolls WHERE state='waiting'")]
    return [r for r in waiting if not set(r.jobs) & set(jobs_on(db, r.federation,
                                                              r.participant))]


def forget(db: sqlite3.Connection, federation: str, participant: str) -> None:
    db.execute("DELETE FROM rolls WHERE federation=? AND participant=?", (federation, participant))


def refusal(participant: str, jobs: list[str]) -> str:
    return (f"{participant} runs {'job' if len(jobs) == 1 else 'jobs'} {', '.join(jobs)} and the "
            "renewal said not to interrupt it (--if-job-running refuse): it keeps its old "
            "certificate until it next starts, which uses the new kit (restart it once the "
            "job has ended, or renew again to wait for it)")


def _roll(row: sqlite3.Row) -> Roll:
    return Roll(row["federation"], row["participant"], row["fingerprint"], row["state"],
                json.loads(row["jobs"]), row["generation"],
                Envelope.model_validate_json(row["cause"]), json.loads(row["sites"]))
