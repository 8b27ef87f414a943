"""Job-controller handlers: submit once, abort, observe, follow the federation's membership."""
from __future__ import annotations

import hashlib
import json
import re
import time
from datetime import UTC, datetime

from arcflare.contracts.commands import AbortJob, RefreshFederationStatus, SubmitJob
from arcflare.contracts.events import (
    ClientView,
    FederationProvisioned,
    FederationStatusObserved,
    JobFailed,
    JobSubmitted,
    SiteRemoved,
)
from arcflare.job_controller import records
from arcflare.job_controller.adapters.flare_admin import FlareAdmin, ServerView
from arcflare.job_controller.decoration import bridge_available
from arcflare.job_controller.flare_admins import FlareAdmins, UnknownFederation
from arcflare.job_controller.job_folders import prepare_job, rounds_of
from arcflare.job_controller.packages import Caps, InvalidPackage
from arcflare.job_controller.settings import JobControllerSettings
from arcflare.runtime.errors import Rejected
from arcflare.runtime.logging import get_logger
from arcflare.runtime.state import StateStore, UnitOfWork

log = get_logger(__name__)
CLIENT_POLL_S = 1.0
#: a command may overtake the FederationProvisioned that introduces its federation
ARRIVAL_GRACE_S = 30.0
SUBMIT_TOKEN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")  # nvflare.apis.utils.job_submit_token


def _admin(flare_admins: FlareAdmins, federation: str) -> FlareAdmin:
    try:
        return flare_admins.for_federation(federation)
    except UnknownFederation:
        raise Rejected(
            "not_found", f"federation: {federation!r} is not provisioned (no FederationProvisioned seen)",
            errors=[{"field": "federation", "problem": "unknown federation"}],
            retry_for_s=ARRIVAL_GRACE_S,
        ) from None


def _connected(view: ServerView, sites: list[str] | None) -> list[str]:
    names = {c.name for c in view.clients}
    return sorted(names & set(sites) if sites else names)


def _wait_for_clients(admin: FlareAdmin, cmd: SubmitJob) -> tuple[list[str], str | None]:
    """The connected sites, and None once min_clients are there; else the reason, after timeout_s."""
    deadline = time.monotonic() + cmd.timeout_s
    while True:
        seen = _connected(admin.server_view(), cmd.sites)
        if len(seen) >= cmd.min_clients:
            return seen, None
        if time.monotonic() >= deadline:
            return seen, (f"only {len(seen)} of min_clients={cmd.min_clients} sites connected "
                          f"within timeout_s={cmd.timeout_s}")
        time.sleep(min(CLIENT_POLL_S, max(0.0, deadline - time.monotonic())))


def _submit_once(admin: FlareAdmin, job_dir, token: str) -> str:
    """NVFlare answers a repeated token with the job it already has; if the content differs
    (say, a newer build of the same command), look the job up by its token instead."""
    from nvflare.fuel.flare_api.api_spec import SubmitTokenConflict

    try:
        return admin.submit(job_dir, token)
    except SubmitTokenConflict:
        job_id = admin.find_submitted(token)
        if job_id is None:
            raise
        return job_id


def submit_token(message_id: str) -> str:
    """The command id itself when NVFlare accepts it as a token ([A-Za-z0-9._:-]{1,128}),
    else a digest of it (ids from other senders may use other characters)."""
    if SUBMIT_TOKEN.fullmatch(message_id):
        return message_id
    return "sha256-" + hashlib.sha256(message_id.encode()).hexdigest()


def submit_job(
    cmd: SubmitJob, *, uow: UnitOfWork, flare_admins: FlareAdmins, settings: JobControllerSettings
) -> None:
    command_id = uow.envelope.message_id
    token = submit_token(command_id)
    if records.job_by_command(uow.db, command_id):
        return
    admin = _admin(flare_admins, cmd.federation)
    caps = Caps(settings.max_package_bytes, settings.max_package_files)
    try:
        job_dir = prepare_job(cmd, token, data_dir=settings.data_dir, caps=caps, bridge=bridge_available())
    except InvalidPackage as exc:
        raise Rejected("invalid", str(exc), errors=[{"field": str(exc).split(":")[0], "problem": str(exc)}]) from None
    connected, reason = _wait_for_clients(admin, cmd)
    if reason:
        uow.publish(JobFailed(federation=cmd.federation, name=cmd.name, reason=reason))
        return
    # the token is this command's id: after a crash between an earlier attempt's submit and
    # its commit, NVFlare returns that attempt's job instead of starting a second one
    job_id = _submit_once(admin, job_dir, token)
    log.info("job_submitted", federation=cmd.federation, job_id=job_id, submit_token=token)
    status = "SUBMITTED"
    rounds = rounds_of(job_dir)
    # the sites it runs on: those named, or (deployed to @ALL) those connected now
    sites = list(cmd.sites or connected)
    uow.write().execute(
        "INSERT INTO jobs (job_id, federation, name, command_id, correlation_id, status, submitted_at,"
        " deadline, rounds, sites) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (job_id, cmd.federation, cmd.name, command_id, uow.envelope.correlation_id or command_id, status,
         time.time(), time.time() + cmd.timeout_s, rounds, json.dumps(sites)),
    )
    uow.publish(JobSubmitted(federation=cmd.federation, job_id=job_id, name=cmd.name,
                             sites=sites, rounds=rounds))


def abort_job(
    cmd: AbortJob, *, uow: UnitOfWork, state: StateStore, flare_admins: FlareAdmins
) -> None:
    job = records.job(uow.db, cmd.job_id)
    if job is None or job.federation != cmd.federation:
        raise Rejected("not_found", f"job_id: no job {cmd.job_id!r} in federation {cmd.federation!r}",
                       errors=[{"field": "job_id", "problem": "unknown job"}])
    if job.finished:
        raise Rejected("conflict", f"job_id: job {cmd.job_id} already ended as {job.status}")
    admin = _admin(flare_admins, cmd.federation)
    # committed before NVFlare is asked, so whichever poll sees the end reports it as this
    # command's outcome (a redelivery marks again and aborts again: both harmless)
    with state.unit_of_work() as marking:
        marking.write().execute(
            "UPDATE jobs SET abort_command_id=?, abort_correlation_id=?,"
            " abort_reason=COALESCE(abort_reason, 'aborted on request') WHERE job_id=?",
            (uow.envelope.message_id, uow.envelope.correlation_id, job.job_id),
        )
    admin.abort(job.job_id)


def observe_federation(admin: FlareAdmin, federation: str) -> FederationStatusObserved:
    view = admin.server_view()
    return FederationStatusObserved(
        federation=federation,
        server_status=view.status,
        clients=[
            ClientView(name=c.name, last_connect_time=(
                datetime.fromtimestamp(c.last_connect_time, UTC) if c.last_connect_time else None))
            for c in view.clients
        ],
        running_jobs=view.running_jobs,
    )


def refresh_federation_status(
    cmd: RefreshFederationStatus, *, uow: UnitOfWork, flare_admins: FlareAdmins
) -> None:
    uow.publish(observe_federation(_admin(flare_admins, cmd.federation), cmd.federation))


def record_federation(event: FederationProvisioned, *, uow: UnitOfWork) -> None:
    uow.write().execute(
        "INSERT INTO federations (name, admin_kit_dir, admin_name, server_endpoint, sites, admins)"
        " VALUES (?,?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET admin_kit_dir=excluded.admin_kit_dir,"
        " admin_name=excluded.admin_name, server_endpoint=excluded.server_endpoint,"
        " sites=excluded.sites, admins=excluded.admins",
        (event.federation, str(records.kit_dir(event.admin_kit_ref)), event.admin_name,
         event.server_endpoint, json.dumps(event.sites),
         json.dumps([a.model_dump() for a in event.admins])),
    )


def disable_removed_site(event: SiteRemoved, *, uow: UnitOfWork, flare_admins: FlareAdmins) -> None:
    try:
        admin = flare_admins.for_federation(event.federation)
    except UnknownFederation:
        log.warning("site_removed_unknown_federation", federation=event.federation, site=event.site)
        return
    admin.disable_client(event.site)  # unreachable server: transient, retried with backoff
    uow.write().execute("INSERT OR IGNORE INTO removed_sites VALUES (?, ?)",
                        (event.federation, event.site))


COMMAND_HANDLERS = {
    SubmitJob: submit_job,
    AbortJob: abort_job,
    RefreshFederationStatus: refresh_federation_status,
}
EVENT_HANDLERS = {
    FederationProvisioned: record_federation,
    SiteRemoved: disable_removed_site,
}
