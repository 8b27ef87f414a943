"""Rolling a renewed participant onto its new kit: when it may restart, and what is owed.

A renewal (CertificateRenewed) points the participant's next start at its new kit at once.
If it runs, it is restarted from that kit — unless a job runs on it (on a site: a job that
runs on that site; on the server: any job of the federation). Then the renewal's option
decides: wait, and restart it once those jobs have ended, or refuse, and leave it on its old
certificate until it next starts. The jobs come from the job-controller's events (JobSubmitted
until JobCompleted or JobFailed), so the deployer asks no one.

A roll that waits is kept (with the jobs, in the tables below) with the CertificateRenewed
that asked for it: the watcher carries it out once the jobs are over, in that event's name,
so its outcome is correlated with the renewal like any other. So is a server that was
restarted but does not listen yet: the watcher announces the roll with ServerDeployed.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field

from arcflare.artifacts import ArtifactStore
from arcflare.contracts.envelope import Envelope
from arcflare.contracts.events import (
    CertificateRenewed,
    JobCompleted,
    JobFailed,
    JobSubmitted,
    ParticipantRolled,
    RollPostponed,
    RollRefused,
)
from arcflare.deployer import tables
from arcflare.deployer.compute import SERVER, Computes
from arcflare.deployer.deployments import deploy, own_kit, stop
from arcflare.flare.kit_artifacts import KitCache
from arcflare.runtime import UnitOfWork, get_logger

log = get_logger("arcflare.deployer.rolls")


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


def roll_renewed(evt: CertificateRenewed, *, uow: UnitOfWork, computes: Computes,
                 kits: KitCache, artifacts: ArtifactStore) -> None:
    """A renewed participant's next start uses its new kit; a running one is restarted from
    it now, or once the jobs it runs have ended, or not (the renewal's option)."""
    if evt.kind == "admin":
        return  # nothing the deployer runs: the job-controller logs in with it
    name = SERVER if evt.kind == "server" else evt.participant
    own_kit(artifacts, evt.kit_ref, evt.kit, evt.federation, name)
    db = uow.write()
    known = (tables.server_target(db, evt.federation) if name == SERVER
             else tables.site_target(db, evt.federation, name))
    if known is None or not tables.renew_kit(db, evt.federation, name, evt.kit_ref, evt.kit):
        log.warning("renewed kit of a participant the deployer does not know; nothing to roll",
                    federation=evt.federation, participant=name)
        return
    if known.kit is not None and known.kit != evt.kit:
        # a running copy runs from its workspace: the old kit's keys need not stay cached
        uow.after_commit(lambda: kits.forget(known.kit))
    found = tables.deployment(db, evt.federation, name)
    fact = {"federation": evt.federation, "participant": name, "fingerprint": evt.new_fingerprint}
    if found is None or not found.live:
        uow.publish(ParticipantRolled(**fact, restarted=False))
        return
    jobs = jobs_on(db, evt.federation, name)
    if jobs and evt.if_job_running == "refuse":
        uow.publish(RollRefused(**fact, reason=refusal(name, jobs), jobs=jobs))
    elif jobs:
        hold(db, Roll(evt.federation, name, evt.new_fingerprint, "waiting", jobs,
                      found.placement.generation, uow.envelope))
        uow.publish(RollPostponed(**fact, jobs=jobs))
    else:
        restart_renewed(uow, evt.federation, name, evt.new_fingerprint, computes, kits)


def restart_renewed(uow: UnitOfWork, federation: str, name: str, fingerprint: str,
                    computes: Computes, kits: KitCache,
                    waited_for: list[str] | None = None) -> None:
    """Stop the participant and start it from its (new) kit; the roll is announced once it
    runs (a server once it listens: the watcher says so then). The server's running sites
    are restarted with it: an NVFlare client's session token is signed with the server's
    key, so a client registers again with a server that has a new one, or never talks to it."""
    target = (tables.server_target(uow.db, federation) if name == SERVER
              else tables.site_target(uow.db, federation, name))
    if target is None:
        return  # removed meanwhile
    sites = [d.target for d in tables.deployments(uow.db, federation=federation, live_only=True)
             if d.target != SERVER] if name == SERVER else []
    for site in sites:  # first, so no client logs a lost server on its way out
        stop(uow, federation, site, computes)
    stop(uow, federation, name, computes)
    placement = deploy(uow, target, computes, kits, restart=True)
    for site in sites:  # each retries until the server listens, as a person's would
        if (site_target := tables.site_target(uow.db, federation, site)) is not None:
            deploy(uow, site_target, computes, kits, restart=True)
    forget(uow.db, federation, name)
    if placement is None:
        return  # DeploymentFailed says why; the new kit stays its next start's
    roll = Roll(federation, name, fingerprint, "restarting", waited_for or [],
                placement.generation, uow.envelope, sites)
    if placement.ready:
        uow.publish(rolled(roll))
    else:
        hold(uow.db, roll)


def note_job_submitted(evt: JobSubmitted, *, uow: UnitOfWork) -> None:
    note_job(uow.write(), evt.federation, evt.job_id, evt.sites)


def note_job_ended(evt: JobCompleted | JobFailed, *, uow: UnitOfWork) -> None:
    """The rolls that waited for it are carried out by the watcher, in their renewal's name."""
    if evt.job_id is not None:
        end_job(uow.write(), evt.federation, evt.job_id)


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
