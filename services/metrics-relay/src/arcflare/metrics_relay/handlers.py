"""metrics-relay handlers: NVFlare metrics and job events → MLflow runs and registered models."""
from __future__ import annotations

import math
from datetime import UTC, datetime

from arcflare.artifacts import ArtifactStore
from arcflare.contracts.events import (
    FlareEventObserved,
    JobCompleted,
    JobStatusChanged,
    JobSubmitted,
    MetricsReported,
    ModelRegistered,
)
from arcflare.metrics_relay.adapters.tracking import RunStatus, Tracking, TrackingRefused
from arcflare.metrics_relay.global_model import completed_rounds, find_global_model
from arcflare.metrics_relay.job_results import job_result
from arcflare.metrics_relay.job_runs import Job, JobRuns
from arcflare.metrics_relay.settings import MetricsRelaySettings
from arcflare.runtime import Rejected, UnitOfWork, get_logger

log = get_logger("arcflare.metrics_relay")

MODEL_ARTIFACT_PATH = "global_model"


class JobNotAnnounced(LookupError):
    """Metrics for a job whose events have not arrived (yet): retried, not rejected."""


def record_metrics(msg: MetricsReported, *, uow: UnitOfWork, job_runs: JobRuns,
                   tracking: Tracking, settings: MetricsRelaySettings) -> None:
    batch_id = msg.batch_id or uow.envelope.message_id
    if uow.db.execute("SELECT 1 FROM metric_batches WHERE job_id = ? AND site = ? AND batch_id = ?",
                      (msg.job_id, msg.site, batch_id)).fetchone():
        log.info("metrics.replayed_batch_skipped", job_id=msg.job_id, site=msg.site,
                 batch_id=batch_id)
        return
    for i, point in enumerate(msg.points):
        if not math.isfinite(point.value):
            raise Rejected("invalid", f"points.{i}.value must be a finite number, not "
                                      f"{point.value}", [{"field": f"points.{i}.value",
                                                          "problem": "not a finite number"}])
    job = _known_job(msg, uow=uow, job_runs=job_runs, settings=settings)
    with _refused_as_invalid():
        run_id = job_runs.site(uow, job, msg.site)
        tracking.log_points(run_id, msg.points)
    uow.write().execute("INSERT INTO metric_batches VALUES (?, ?, ?, ?, ?)",
                        (msg.job_id, msg.site, batch_id, len(msg.points),
                         datetime.now(UTC).isoformat()))


def open_job_run(evt: JobSubmitted, *, uow: UnitOfWork, job_runs: JobRuns) -> None:
    job = job_runs.remember(uow, evt.federation, evt.job_id, name=evt.name, sites=evt.sites,
                            rounds=evt.rounds, command_id=uow.envelope.correlation_id)
    with _refused_as_invalid():
        job_runs.describe(uow, job)


def note_job_status(evt: JobStatusChanged, *, uow: UnitOfWork, job_runs: JobRuns) -> None:
    job = job_runs.remember(uow, evt.federation, evt.job_id, status=evt.status)
    job_runs.describe(uow, job)


def observe_flare_event(evt: FlareEventObserved, *, uow: UnitOfWork, job_runs: JobRuns,
                        tracking: Tracking) -> None:
    if evt.job_id is None:
        return
    if evt.event == "job_started":
        job = job_runs.remember(
            uow, evt.federation, evt.job_id, name=evt.detail.get("job_name"),
            nvflare_version=evt.detail.get("nvflare_version"),
            server_run_id=evt.detail.get("mlflow_run_id"))
        job_runs.describe(uow, job)
    elif evt.event in ("client_disconnected", "client_reconnected") and evt.site:
        job = job_runs.get(uow, evt.job_id)
        if job is not None:
            tracking.set_tags(job_runs.site(uow, job, evt.site),
                              {"nvflare.connection": evt.event.removeprefix("client_")})


def close_job_runs(evt: JobCompleted, *, uow: UnitOfWork, job_runs: JobRuns, tracking: Tracking,
                   settings: MetricsRelaySettings, artifacts: ArtifactStore) -> None:
    job = job_runs.remember(uow, evt.federation, evt.job_id, name=evt.name, status=evt.status)
    parent = job_runs.describe(uow, job)
    refused = None
    if evt.status == "FINISHED:COMPLETED" and not job.model_version:
        try:
            _register_global_model(evt, job_runs.get(uow, evt.job_id), parent, uow=uow,
                                   tracking=tracking, settings=settings, artifacts=artifacts)
        except Rejected as exc:  # the runs still end; then the event is refused with why
            refused = exc
            tracking.set_tags(parent, {"arcflare.model": f"not registered: {exc.detail}"[:500]})
    status = run_status(evt.status)
    for run_id in job_runs.site_runs(uow, evt.job_id).values():
        tracking.end_run(run_id, status)
    if job_runs.owns_parent(job_runs.get(uow, evt.job_id)):
        tracking.end_run(parent, status)
    if refused is not None:
        raise refused


def run_status(nvflare_status: str) -> RunStatus:
    if nvflare_status == "FINISHED:COMPLETED":
        return "FINISHED"
    if nvflare_status == "FINISHED:ABORTED":
        return "KILLED"
    return "FAILED"


def _register_global_model(evt: JobCompleted, job: Job, parent: str, *, uow: UnitOfWork,
                           tracking: Tracking, settings: MetricsRelaySettings,
                           artifacts: ArtifactStore) -> None:
    with job_result(evt, artifacts, settings) as result_dir:
        model = find_global_model(result_dir) if result_dir else None
        if model is None:
            where = evt.result_ref or "no result"
            log.warning("model.not_found", job_id=evt.job_id, result=where)
            tracking.set_tags(parent, {"arcflare.model": f"no global model in {where}"})
            return
        rounds = job.rounds or completed_rounds(result_dir)
        source = tracking.log_artifact(parent, model, MODEL_ARTIFACT_PATH)
    name = f"{evt.federation}-{evt.name}"
    tags = {**job.lineage(), "run_id": parent, "model_file": model.name}
    if rounds is not None:
        tags["rounds"] = str(rounds)
    with _refused_as_invalid():
        version = tracking.register_model(name, source, parent, tags, unique_tag="job_id")
    uow.write().execute("UPDATE jobs SET model_name = ?, model_version = ?, rounds = ? "
                        "WHERE job_id = ?", (name, version, rounds, evt.job_id))
    uow.publish(ModelRegistered(federation=evt.federation, job_id=evt.job_id, name=name,
                                version=version, run_id=parent))


def _known_job(msg: MetricsReported, *, uow: UnitOfWork, job_runs: JobRuns,
               settings: MetricsRelaySettings) -> Job:
    job = job_runs.get(uow, msg.job_id)
    if job is not None:
        if job.federation != msg.federation:
            raise Rejected("invalid", f"job_id {msg.job_id} belongs to federation "
                                      f"{job.federation}, not {msg.federation}",
                           [{"field": "federation", "problem": "not the job's federation"}])
        return job
    waited = job_runs.waiting_for_job(uow.envelope.message_id)
    if waited < settings.unknown_job_grace_s:
        raise JobNotAnnounced(f"job {msg.job_id} not announced yet (waited {waited:.0f} s); "
                              "retrying")
    raise Rejected("not_found", f"job_id {msg.job_id} is not a job of federation "
                                f"{msg.federation}: no JobSubmitted or job_started arrived "
                                f"within {settings.unknown_job_grace_s:.0f} s",
                   [{"field": "job_id", "problem": "unknown job"}])


class _refused_as_invalid:
    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if isinstance(exc, TrackingRefused):
            raise Rejected("invalid", f"MLflow refused it: {exc}") from exc
        return False


EVENT_HANDLERS = {
    JobSubmitted: open_job_run,
    JobStatusChanged: note_job_status,
    JobCompleted: close_job_runs,
}
TELEMETRY_HANDLERS = {
    MetricsReported: record_metrics,
    FlareEventObserved: observe_flare_event,
}
