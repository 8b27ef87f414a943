"""Job-controller handlers: submit once, abort, observe, follow the federation's membership."""
from __future__ import annotations

import json
import re
import threading
import time
from datetime import UTC, datetime

from arcflare.artifacts import ArtifactError, ArtifactStore
from arcflare.contracts.artifacts import ArtifactRef
from arcflare.contracts.commands import AbortJob, RefreshFederationStatus, SubmitJob
from arcflare.contracts.events import (
    CertificateRenewed,
    ClientView,
    FederationProvisioned,
    FederationStatusObserved,
    JobCompleted,
    ServerDeployed,
    SiteRemoved,
)
from arcflare.flare.kit_artifacts import check_kit
from arcflare.job_controller import tables
from arcflare.job_controller.adapters.flare_admin import FlareAdmin
from arcflare.job_controller.client_wait import submit_token, waiting_event
from arcflare.job_controller.decoration import bridge_bus
from arcflare.job_controller.flare_admins import AdminKitUnusable, FlareAdmins, UnknownFederation
from arcflare.job_controller.job_folders import prepare_job
from arcflare.job_controller.packages import Caps, InvalidPackage
from arcflare.job_controller.settings import JobControllerSettings
from arcflare.observability import tracing
from arcflare.runtime.errors import Rejected
from arcflare.runtime.logging import get_logger
from arcflare.runtime.state import StateStore, UnitOfWork

log = get_logger(__name__)
#: a command may overtake the FederationProvisioned that introduces its federation
ARRIVAL_GRACE_S = 30.0
#: NVFlare's word for an aborted job; a job aborted while waiting for clients ends the same way
ABORTED = "FINISHED:ABORTED"


def _admin(flare_admins: FlareAdmins, federation: str) -> FlareAdmin:
    try:
        return flare_admins.for_federation(federation)
    except UnknownFederation:
        raise Rejected(
            "not_found", f"federation: {federation!r} is not provisioned (no FederationProvisioned seen)",
            errors=[{"field": "federation", "problem": "unknown federation"}],
            retry_for_s=ARRIVAL_GRACE_S,
        ) from None
    except AdminKitUnusable as exc:
        raise Rejected("invalid", str(exc),
                       errors=[{"field": "federation", "problem": "admin kit unusable"}]) from None


def submit_job(cmd: SubmitJob, *, uow: UnitOfWork, settings: JobControllerSettings,
               artifacts: ArtifactStore, job_watch: threading.Event | None = None) -> None:
    """Check and build the job, then leave the wait for clients to the watcher (client_wait):
    the command is answered at once and holds nothing while the clients come. (The federation
    is known: the role policy refuses commands for others before any handler.)"""
    command_id = uow.envelope.message_id
    caps = Caps(settings.max_package_bytes, settings.max_package_files)
    try:
        job_dir = prepare_job(cmd, submit_token(command_id), data_dir=settings.data_dir, caps=caps,
                              bridge=True, artifacts=artifacts, bus=bridge_bus(settings))
    except InvalidPackage as exc:
        field = re.match(r"[\w.]*", str(exc)).group()  # "package.ref", "package.recipe", ...
        raise Rejected("invalid", str(exc), errors=[{"field": field, "problem": str(exc)}]) from None
    now = time.time()
    waiting = tables.WaitingJob(
        command_id=command_id, federation=cmd.federation, name=cmd.name, command=uow.envelope,
        job_dir=job_dir, min_clients=cmd.min_clients, sites=cmd.sites, connected=[],
        accepted_at=now, clients_deadline=now + cmd.clients_timeout_s, job_timeout_s=cmd.timeout_s,
        traceparent=tracing.current_traceparent(),  # its submission, later, continues this trace
    )
    if tables.add_waiting(uow.write(), waiting):
        uow.publish(waiting_event(waiting, connected=[]))
        if job_watch is not None:  # the watcher looks at once, not at its next tick
            uow.after_commit(job_watch.set)


class WaitEndedMeanwhile(RuntimeError):
    """The watcher submitted or failed the job while an AbortJob looked at it: the abort is
    retried (a transient failure) and then finds the job in its new state."""


def _cancel_wait(cmd: AbortJob, uow: UnitOfWork) -> bool:
    """End a job that still waits for clients: it never reaches NVFlare."""
    waiting = tables.waiting_job(uow.db, cmd.job_id)
    if waiting is None or waiting.federation != cmd.federation or waiting.state == "submitted":
        return False
    if waiting.state != "waiting":
        raise Rejected("conflict", f"job_id: job {cmd.job_id} never reached NVFlare: it ended "
                       f"{waiting.state} while waiting for clients")
    if not tables.end_wait(uow.write(), waiting.command_id, "aborted"):
        raise WaitEndedMeanwhile(cmd.job_id)
    uow.publish(JobCompleted(
        federation=waiting.federation, job_id=waiting.command_id, name=waiting.name,
        status=ABORTED, duration_s=round(time.time() - waiting.accepted_at, 3),
        reason="aborted on request while waiting for clients; never submitted to NVFlare",
    ))
    return True


def abort_job(
    cmd: AbortJob, *, uow: UnitOfWork, state: StateStore, flare_admins: FlareAdmins
) -> None:
    if _cancel_wait(cmd, uow):
        return
    # by NVFlare's id, or by the SubmitJob's id once the wait ended in a submission
    job = tables.job(uow.db, cmd.job_id) or tables.job_by_command(uow.db, cmd.job_id)
    if job is None or job.federation != cmd.federation:
        raise Rejected("not_found", f"job_id: no job {cmd.job_id!r} in federation {cmd.federation!r}",
                       errors=[{"field": "job_id", "problem": "unknown job"}])
    if job.finished:
        raise Rejected("conflict", f"job_id: job {job.job_id} already ended as {job.status}")
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
            ClientView(name=c.name, nvflare_version=c.nvflare_version, last_connect_time=(
                datetime.fromtimestamp(c.last_connect_time, UTC) if c.last_connect_time else None))
            for c in view.clients
        ],
        running_jobs=view.running_jobs,
    )


def refresh_federation_status(
    cmd: RefreshFederationStatus, *, uow: UnitOfWork, flare_admins: FlareAdmins
) -> None:
    uow.publish(observe_federation(_admin(flare_admins, cmd.federation), cmd.federation))


def record_federation(event: FederationProvisioned, *, uow: UnitOfWork,
                      artifacts: ArtifactStore) -> None:
    """Remember how to reach the federation's server. Its admin kit is only ever a reference
    into this job-controller's artifact store (kits area), fetched when first used."""
    admin_kit = _own_kit(artifacts, event.admin_kit, event.admin_kit_ref)
    uow.write().execute(
        "INSERT INTO federations (name, admin_kit_dir, admin_name, server_endpoint, sites, admins,"
        " admin_kit) VALUES (?,?,?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET"
        " admin_name=excluded.admin_name, server_endpoint=excluded.server_endpoint,"
        " sites=excluded.sites, admins=excluded.admins, admin_kit=excluded.admin_kit",
        (event.federation, "", event.admin_name, event.server_endpoint, json.dumps(event.sites),
         json.dumps([a.model_dump() for a in event.admins]), admin_kit.model_dump_json()),
    )


def log_in_anew_after_renewal(event: CertificateRenewed, *, uow: UnitOfWork,
                              artifacts: ArtifactStore) -> None:
    """The admin the FLARE API logs in as has a new kit, or the server a new key (which signed
    the session's token): the federation's record changes, so the next call closes the old
    session and logs in afresh."""
    db, federation = uow.write(), event.federation
    if event.kind == "admin":
        kit = _own_kit(artifacts, event.kit, event.kit_ref)
        changed = db.execute("UPDATE federations SET admin_kit=? WHERE name=? AND admin_name=?",
                             (kit.model_dump_json(), federation, event.participant)).rowcount
    elif event.kind == "server":
        changed = db.execute("UPDATE federations SET server_cert_fingerprint=? WHERE name=?",
                             (event.new_fingerprint, federation)).rowcount
    else:
        return
    if changed:
        log.info("a renewed certificate: the FLARE session is opened again",
                 federation=federation, participant=event.participant)


def _own_kit(artifacts: ArtifactStore, kit: ArtifactRef | None, kit_ref: str) -> ArtifactRef:
    """The admin kit announced, if it is one of this store's kits; else refused."""
    if kit is None:
        raise Rejected("Forbidden", f"admin kit {kit_ref!r} is no reference into the artifact "
                                    "store; kits are used only from the store")
    try:
        check_kit(artifacts, kit)
    except ArtifactError as exc:
        raise Rejected("Forbidden", f"admin kit: {exc}") from None
    return kit


def disable_removed_site(event: SiteRemoved, *, uow: UnitOfWork, flare_admins: FlareAdmins) -> None:
    try:
        admin = flare_admins.for_federation(event.federation)
    except UnknownFederation:
        log.warning("site removed from a federation not known here; nothing to disable", federation=event.federation, site=event.site)
        return
    admin.disable_client(event.site)  # unreachable server: transient, retried with backoff
    uow.write().execute("INSERT OR IGNORE INTO removed_sites VALUES (?, ?)",
                        (event.federation, event.site))


def log_in_ahead(event: ServerDeployed, *, flare_admins: FlareAdmins) -> None:
    """The deployer announces a server once it accepts connections: log the job admin in now,
    so the federation's first job is not submitted a login (about a second) late."""
    try:
        admin = flare_admins.for_federation(event.federation)
    except (UnknownFederation, AdminKitUnusable) as exc:
        log.info("no job admin to log in ahead", federation=event.federation, error=repr(exc))
        return
    admin.warm()


COMMAND_HANDLERS = {
    SubmitJob: submit_job,
    AbortJob: abort_job,
    RefreshFederationStatus: refresh_federation_status,
}
EVENT_HANDLERS = {
    FederationProvisioned: record_federation,
    SiteRemoved: disable_removed_site,
    CertificateRenewed: log_in_anew_after_renewal,
    ServerDeployed: log_in_ahead,
}
