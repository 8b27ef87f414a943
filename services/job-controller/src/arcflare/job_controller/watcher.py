"""Background: follow every unfinished job in NVFlare, and observe each federation now and then.

Events a job's state changes cause are published as if caused by its SubmitJob
(causation = that command, correlation kept), so `--wait` style followers and
the ledger can tie them to the request.
"""
from __future__ import annotations

import threading
import time
from collections import defaultdict

from arcflare.contracts.envelope import Envelope
from arcflare.job_controller import job_events, records
from arcflare.job_controller.adapters.flare_admin import FlareAdmin
from arcflare.job_controller.flare_admins import FlareAdmins, UnknownFederation
from arcflare.job_controller.handlers import observe_federation
from arcflare.job_controller.records import JobRecord
from arcflare.job_controller.settings import JobControllerSettings
from arcflare.runtime.logging import get_logger
from arcflare.runtime.state import StateStore

log = get_logger(__name__)


def _cause(job: JobRecord) -> Envelope:
    return Envelope(message_id=job.command_id, type="SubmitJob", federation=job.federation,
                    correlation_id=job.correlation_id or job.command_id)


class JobWatcher:
    def __init__(self, state: StateStore, flare_admins: FlareAdmins, settings: JobControllerSettings) -> None:
        self.state, self.flare_admins, self.settings = state, flare_admins, settings
        self._last_observed: dict[str, float] = {}

    def __call__(self, stop: threading.Event) -> None:
        while not stop.wait(self.settings.job_poll_interval_s):
            try:
                self.poll_jobs()
                self.observe_federations()
            except Exception as exc:
                log.exception("watch_failed", error=repr(exc))

    def poll_jobs(self) -> None:
        with self.state.connect() as db:
            jobs = records.unfinished_jobs(db)
        by_federation: dict[str, list[JobRecord]] = defaultdict(list)
        for job in jobs:
            by_federation[job.federation].append(job)
        for federation, fed_jobs in by_federation.items():
            try:
                admin = self.flare_admins.for_federation(federation)
            except UnknownFederation:
                continue
            lost = self._lost_sites(admin, fed_jobs)
            for job in fed_jobs:
                try:
                    self.poll_job(admin, job, lost)
                except Exception as exc:  # noqa: BLE001 - one job's trouble must not stall the rest
                    log.warning("job_poll_failed", job_id=job.job_id, error=repr(exc))

    def _lost_sites(self, admin: FlareAdmin, jobs: list[JobRecord]) -> set[str] | None:
        """Sites the server no longer lists (it drops a client after heart_beat_timeout)."""
        if not self.settings.abort_on_site_loss or not any(j.status == "RUNNING" for j in jobs):
            return None
        try:
            seen = {c.name for c in admin.server_view().clients}
        except Exception as exc:  # noqa: BLE001 - no view this time: decide nothing
            log.info("server_view_failed", error=repr(exc))
            return None
        return {site for job in jobs for site in job.sites} - seen

    def _abort(self, admin: FlareAdmin, job: JobRecord, reason: str) -> None:
        log.warning("aborting_job", job_id=job.job_id, reason=reason)
        with self.state.unit_of_work() as uow:
            uow.write().execute("UPDATE jobs SET abort_reason=? WHERE job_id=? AND abort_reason IS NULL",
                                (reason, job.job_id))
        admin.abort(job.job_id)  # the terminal state arrives on a later poll

    def poll_job(self, admin: FlareAdmin, job: JobRecord, lost: set[str] | None = None) -> None:
        view = admin.job(job.job_id)
        if job_events.is_terminal(view.status):
            result_ref = job_events.download_result(admin, job, self.settings.data_dir / "results")
            with self.state.unit_of_work(_cause(job)) as uow:
                job_events.finish(uow, job, view, result_ref)
            return
        if view.status and view.status != job.status:
            with self.state.unit_of_work(_cause(job)) as uow:
                job_events.record_status(uow, job, view.status)
        if time.time() > job.deadline:
            self._abort(admin, job, "timeout_s exceeded")
            return
        gone = sorted(set(job.sites) & (lost or set()))
        if view.status == "RUNNING" and gone:
            self._abort(admin, job, f"site lost: {', '.join(gone)} no longer connected to the server "
                                    "(dropped after its heart_beat_timeout)")

    def observe_federations(self) -> None:
        interval = self.settings.status_poll_interval_s
        if interval <= 0:
            return
        with self.state.connect() as db:
            names = records.federations(db)
        now = time.monotonic()
        for name in names:
            if now - self._last_observed.get(name, -interval) < interval:
                continue
            self._last_observed[name] = now
            try:
                event = observe_federation(self.flare_admins.for_federation(name), name)
            except Exception as exc:  # noqa: BLE001 - an unreachable server is reported next time
                log.info("federation_unreachable", federation=name, error=repr(exc))
                continue
            with self.state.unit_of_work() as uow:
                uow.publish(event)
