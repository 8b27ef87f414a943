"""Background: submit the jobs waiting for clients (client_wait), follow every unfinished job
in NVFlare, and observe each federation now and then.

Events a job's state changes cause are published as if caused by its SubmitJob
(causation = that command, correlation kept), so `--wait` style followers and
the ledger can tie them to the request.
"""
from __future__ import annotations

import threading
import time

from arcflare.artifacts import ArtifactStore
from arcflare.contracts.envelope import Envelope
from arcflare.job_controller import job_events, tables
from arcflare.job_controller.adapters.flare_admin import FlareAdmin, JobView
from arcflare.job_controller.client_wait import ClientWait
from arcflare.job_controller.flare_admins import FlareAdmins
from arcflare.job_controller.handlers import observe_federation
from arcflare.job_controller.settings import JobControllerSettings
from arcflare.job_controller.tables import JobRecord
from arcflare.observability import tracing
from arcflare.runtime.logging import get_logger
from arcflare.runtime.state import StateStore

log = get_logger(__name__)


def _cause(job: JobRecord) -> Envelope:
    if job.abort_command_id:
        return Envelope(message_id=job.abort_command_id, type="AbortJob", federation=job.federation,
                        correlation_id=job.abort_correlation_id or job.abort_command_id)
    return Envelope(message_id=job.command_id, type="SubmitJob", federation=job.federation,
                    correlation_id=job.correlation_id or job.command_id)


def _span_attributes(job: JobRecord, view: JobView) -> dict[str, str]:
    return {"arcflare.federation": job.federation, "arcflare.job.id": job.job_id,
            "arcflare.job.status": view.status, "arcflare.job.previous_status": job.status}


#: NVFlare states of a job the scheduler has taken: an abort sent before them may be lost
STARTED = frozenset({"DISPATCHED", "RUNNING"})


def abort_with_reason(state: StateStore, admin: FlareAdmin, job: JobRecord, reason: str) -> None:
    log.warning("aborting the job in NVFlare", job_id=job.job_id, reason=reason)
    with state.unit_of_work() as uow:
        uow.write().execute("UPDATE jobs SET abort_reason=? WHERE job_id=? AND abort_reason IS NULL",
                            (reason, job.job_id))
    admin.abort(job.job_id)  # the terminal state arrives on a later poll


#: how often a watcher pausing between polls looks whether the service stops
STOP_CHECK_S = 0.05


class JobWatcher:
    """Every job_poll_interval_s: the jobs waiting for clients (client_wait), then every
    unfinished job in NVFlare; at once when `wake` is set (an accepted SubmitJob sets it
    when its unit of work commits, so its submission does not wait for the next tick)."""

    def __init__(self, state: StateStore, flare_admins: FlareAdmins, settings: JobControllerSettings,
                 artifacts: ArtifactStore) -> None:
        self.state, self.flare_admins, self.settings = state, flare_admins, settings
        self.artifacts = artifacts
        self.client_wait = ClientWait(state, flare_admins)
        self.wake = threading.Event()

    def __call__(self, stop: threading.Event) -> None:
        while self._pause(stop):
            for step in (self.client_wait.poll, self.poll_jobs):
                try:
                    step()
                except Exception as exc:
                    log.exception("a watcher step failed; the next tick tries again", step=step.__name__, error=repr(exc))

    def _pause(self, stop: threading.Event) -> bool:
        """Until the next tick or a wake; False once the service stops."""
        deadline = time.monotonic() + self.settings.job_poll_interval_s
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0 or self.wake.wait(min(STOP_CHECK_S, left)):
                self.wake.clear()
                return True
        return False

    def poll_jobs(self) -> None:
        with self.state.connect() as db:
            jobs = tables.unfinished_jobs(db)
        for admin, fed_jobs in self.flare_admins.by_federation(jobs):
            for job in fed_jobs:
                try:
                    self.poll_job(admin, job)
                except Exception as exc:  # noqa: BLE001 - one job's trouble must not stall the rest
                    log.warning("asking NVFlare about a job failed; the next poll tries again", job_id=job.job_id, error=repr(exc))

    def poll_job(self, admin: FlareAdmin, job: JobRecord) -> None:
        view = admin.job(job.job_id)
        if job_events.is_terminal(view.status):
            # the job's end belongs to the trace of the SubmitJob that started it
            with tracing.resumed(job.traceparent, "job finished", _span_attributes(job, view)):
                result = job_events.store_result(admin, job, self.settings.data_dir / "results",
                                                 self.artifacts)
                with self.state.unit_of_work(_cause(job)) as uow:
                    job_events.finish(uow, job, view, result)
            return
        if view.status and view.status != job.status:
            with tracing.resumed(job.traceparent, "job status changed",
                                 _span_attributes(job, view)), \
                    self.state.unit_of_work(_cause(job)) as uow:
                job_events.record_status(uow, job, view.status)
            if job.abort_reason and view.status in STARTED:
                # NVFlare's scheduler can dispatch a SUBMITTED job in the moment its abort
                # arrives, and then runs it to the end: an abort must win, so ask again
                log.warning("the job started after it was aborted; aborting it again",
                            job_id=job.job_id, status=view.status, reason=job.abort_reason)
                admin.abort(job.job_id)
        if time.time() > job.deadline:
            abort_with_reason(self.state, admin, job, "timeout_s exceeded")


class FederationWatcher:
    """The server's view of each federation: FederationStatusObserved now and then, and the
    end of running jobs whose sites the server dropped (after its heart_beat_timeout) — NVFlare's
    own dead-client handling inside a FedAvg task can take many minutes.

    It has FLARE admins of its own, so its calls never delay the job polls. Once a federation's
    server answers, it also logs the job admins in (keep_warm), so a federation's first job
    is not submitted a login later than the next.
    """

    def __init__(self, state: StateStore, flare_admins: FlareAdmins, settings: JobControllerSettings,
                 keep_warm: FlareAdmins | None = None) -> None:
        self.state, self.flare_admins, self.settings = state, flare_admins, settings
        self.keep_warm = keep_warm
        self._last_observed: dict[str, float] = {}

    def __call__(self, stop: threading.Event) -> None:
        while not stop.wait(self.settings.site_check_interval_s):
            try:
                self.check()
            except Exception as exc:
                log.exception("watching the federations failed; the next tick tries again", error=repr(exc))

    def check(self) -> None:
        with self.state.connect() as db:
            names = tables.federations(db)
            running = [j for j in tables.unfinished_jobs(db) if j.status == "RUNNING"]
        interval = self.settings.status_poll_interval_s
        now = time.monotonic()
        for name in names:
            jobs = [j for j in running if j.federation == name]
            due = interval > 0 and now - self._last_observed.get(name, -interval) >= interval
            if not jobs and not due:
                continue
            try:
                admin = self.flare_admins.for_federation(name)
                event = observe_federation(admin, name)
            except Exception as exc:  # noqa: BLE001 - an unreachable server is reported next time
                log.info("the federation's NVFlare server is unreachable", federation=name, error=repr(exc))
                continue
            if self.keep_warm is not None:
                try:
                    self.keep_warm.for_federation(name).warm()
                except Exception as exc:  # noqa: BLE001 - the job admin logs in when first used
                    log.info("the job admin could not be prepared", federation=name, error=repr(exc))
            if due:
                self._last_observed[name] = now
                with self.state.unit_of_work() as uow:
                    uow.publish(event)
            if self.settings.abort_on_site_loss:
                self.end_orphaned_jobs(admin, jobs, {c.name for c in event.clients})

    def end_orphaned_jobs(self, admin: FlareAdmin, jobs: list[JobRecord], connected: set[str]) -> None:
        for job in jobs:
            gone = sorted(set(job.sites) - connected)
            if gone:
                abort_with_reason(self.state, admin, job, f"site lost: {', '.join(gone)} no longer "
                                  "connected to the server (dropped after its heart_beat_timeout)")
