"""Accepted jobs waiting for their clients: submitted to NVFlare once min_clients of their
sites are connected to the server, failed after clients_timeout_s.

The wait is a row in the state, not a blocked handler: it survives a restart, and an
AbortJob can end it at any time. Whoever ends a wait first (this watcher or an AbortJob)
wins the conditional update in tables.end_wait; a job that reached NVFlare while an
abort won is aborted there at once. Events are published as caused by the SubmitJob.
"""
from __future__ import annotations

import hashlib
import re
import time
from datetime import UTC, datetime

from arcflare.contracts.events import JobFailed, JobSubmitted, JobWaitingForClients
from arcflare.job_controller import tables
from arcflare.job_controller.adapters.flare_admin import FlareAdmin, JobRefused
from arcflare.job_controller.flare_admins import FlareAdmins
from arcflare.job_controller.job_folders import rounds_of
from arcflare.job_controller.tables import WaitingJob
from arcflare.observability import tracing
from arcflare.runtime.logging import get_logger
from arcflare.runtime.state import StateStore

log = get_logger(__name__)
SUBMIT_TOKEN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")  # nvflare.apis.utils.job_submit_token


def submit_token(message_id: str) -> str:
    """The command id itself when NVFlare accepts it as a token ([A-Za-z0-9._:-]{1,128}),
    else a digest of it (ids from other senders may use other characters). The same
    command always gets the same token, so NVFlare never makes two jobs of it."""
    if SUBMIT_TOKEN.fullmatch(message_id):
        return message_id
    return "sha256-" + hashlib.sha256(message_id.encode()).hexdigest()


def waiting_event(job: WaitingJob, connected: list[str]) -> JobWaitingForClients:
    return JobWaitingForClients(
        federation=job.federation, name=job.name, min_clients=job.min_clients, sites=job.sites,
        clients_timeout_s=round(job.clients_deadline - job.accepted_at),
        clients_deadline=datetime.fromtimestamp(job.clients_deadline, UTC), connected=connected,
    )


def _continued(job: WaitingJob, what: str):
    """What the wait does for a job belongs to the trace of its SubmitJob (only when it does
    something: a poll that changes nothing makes no span)."""
    return tracing.resumed(job.traceparent, what, {"arcflare.federation": job.federation,
                                                   "arcflare.job.command_id": job.command_id})


class ClientWait:
    """One look at each federation's server for all its waiting jobs (the job watcher's first
    step on every tick)."""

    def __init__(self, state: StateStore, flare_admins: FlareAdmins) -> None:
        self.state, self.flare_admins = state, flare_admins

    def poll(self) -> None:
        with self.state.connect() as db:
            waiting = tables.waiting_jobs(db)
        for admin, jobs in self.flare_admins.by_federation(waiting):
            clients = self._connected(admin, jobs[0].federation)
            for job in jobs:
                try:
                    self.advance(admin, job, clients)
                except Exception as exc:  # noqa: BLE001 - one job's trouble must not stall the rest
                    log.warning("a job waiting for clients could not be looked at; the next tick tries again", command_id=job.command_id, error=repr(exc))

    @staticmethod
    def _connected(admin: FlareAdmin, federation: str) -> set[str] | None:
        """The clients the server sees, or None if it cannot be asked now."""
        try:
            return set(admin.connected_clients())
        except Exception as exc:  # noqa: BLE001 - an unreachable server is asked again next time
            log.info("the federation's NVFlare server is unreachable", federation=federation, error=repr(exc))
            return None

    def advance(self, admin: FlareAdmin, job: WaitingJob, clients: set[str] | None) -> None:
        seen = job.connected if clients is None else job.connected_among(clients)
        problem = None
        if clients is not None and len(seen) >= job.min_clients:
            try:
                self.submit(admin, job, seen)
                return
            except JobRefused as exc:
                self.fail(job, "refused", f"NVFlare refused the job: {exc}")
                return
            except Exception as exc:  # noqa: BLE001 - tried again next poll, until the deadline
                log.warning("submitting a waiting job to NVFlare failed", command_id=job.command_id, error=repr(exc))
                problem = exc
        if time.time() >= job.clients_deadline:
            if problem is not None:
                self.fail(job, "submit_failed", f"NVFlare did not take the job before "
                          f"clients_timeout_s ran out: {problem}")
            else:
                self.fail(job, "clients_timeout", self._shortfall(job, seen, clients is None))
            return
        if clients is not None and seen != job.connected:
            with _continued(job, "clients connected"), \
                    self.state.unit_of_work(job.command) as uow:
                if tables.note_connected(uow.write(), job.command_id, seen):
                    uow.publish(waiting_event(job, seen))

    def submit(self, admin: FlareAdmin, job: WaitingJob, seen: list[str]) -> None:
        token = submit_token(job.command_id)
        with _continued(job, "job submission"):
            # a second call (after a crash before the commit below) gets the same job back
            job_id = admin.submit(job.job_dir, token)
            sites = list(job.sites or seen)  # deployed to @ALL: the sites connected now
            rounds = rounds_of(job.job_dir)
            with self.state.unit_of_work(job.command) as uow:
                won = tables.end_wait(uow.write(), job.command_id, "submitted")
                if won:
                    tables.add_job(uow.db, job, job_id, sites=sites, rounds=rounds)
                    uow.publish(JobSubmitted(federation=job.federation, job_id=job_id,
                                             name=job.name, sites=sites, rounds=rounds))
        if not won:
            log.warning("a job reached NVFlare after its abort won; aborting it there", job_id=job_id, command_id=job.command_id)
            admin.abort(job_id)
            return
        log.info("job submitted to NVFlare", federation=job.federation, job_id=job_id, submit_token=token)

    def fail(self, job: WaitingJob, reason: str, detail: str) -> None:
        with _continued(job, "job not submitted"), self.state.unit_of_work(job.command) as uow:
            if tables.end_wait(uow.write(), job.command_id, "failed"):
                uow.publish(JobFailed(federation=job.federation, name=job.name, reason=reason,
                                      detail=detail))
        log.warning("job not submitted", command_id=job.command_id, reason=reason, detail=detail)

    @staticmethod
    def _shortfall(job: WaitingJob, seen: list[str], unreachable: bool) -> str:
        timeout = round(job.clients_deadline - job.accepted_at)
        text = (f"only {len(seen)} of min_clients={job.min_clients} sites connected within "
                f"clients_timeout_s={timeout}" + (f" ({', '.join(seen)})" if seen else ""))
        return text + ("; the server could not be asked at the end" if unreachable else "")
