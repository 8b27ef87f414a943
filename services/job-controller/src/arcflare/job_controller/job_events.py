"""Turning what NVFlare says about a job into events, once each.

The watcher and AbortJob may both see a job end; the conditional UPDATE decides
which of them publishes: only the one whose update changed the row does.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from arcflare.artifacts import ArtifactStore
from arcflare.artifacts.folders import put_folder
from arcflare.contracts.artifacts import JOB_RESULT, ArtifactRef
from arcflare.contracts.events import JobCompleted, JobStatusChanged
from arcflare.job_controller.adapters.flare_admin import FlareAdmin, JobView
from arcflare.job_controller.tables import JobRecord
from arcflare.runtime.logging import get_logger
from arcflare.runtime.state import UnitOfWork

log = get_logger(__name__)


def is_terminal(status: str) -> bool:
    return status.startswith("FINISHED")


def record_status(uow: UnitOfWork, job: JobRecord, status: str) -> bool:
    cur = uow.write().execute(
        "UPDATE jobs SET status=? WHERE job_id=? AND status=? AND finished=0",
        (status, job.job_id, job.status),
    )
    if cur.rowcount == 0:
        return False
    uow.publish(JobStatusChanged(federation=job.federation, job_id=job.job_id, status=status,
                                 previous=job.status))
    return True


def store_result(admin: FlareAdmin, job: JobRecord, scratch: Path,
                 artifacts: ArtifactStore) -> ArtifactRef | None:
    """NVFlare's result of the job, put into the artifact store; None when NVFlare has none
    to give (the job's end is reported regardless). The download is only a scratch copy:
    the store holds the result, readers fetch it from there. A store that fails raises, so
    the next poll tries again rather than lose the result."""
    try:
        folder = admin.download_result(job.job_id, scratch)
    except Exception as exc:  # noqa: BLE001 - a missing result must not hide the job's end
        log.warning("job result not downloaded; the job ends without it", job_id=job.job_id, error=repr(exc))
        return None
    try:
        ref = put_folder(artifacts, folder, JOB_RESULT, area="results", scratch=scratch)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    log.info("result_stored", job_id=job.job_id, result=ref.locator, bytes=ref.size)
    return ref


def finish(
    uow: UnitOfWork, job: JobRecord, view: JobView, result: ArtifactRef | None,
    reason: str | None = None,
) -> bool:
    cur = uow.write().execute(
        "UPDATE jobs SET status=?, finished=1, result_ref=? WHERE job_id=? AND finished=0",
        (view.status, result.model_dump_json() if result else None, job.job_id),
    )
    if cur.rowcount == 0:
        return False
    if view.status != job.status:
        uow.publish(JobStatusChanged(federation=job.federation, job_id=job.job_id,
                                     status=view.status, previous=job.status))
    duration = view.duration_s if view.duration_s is not None else time.time() - job.submitted_at
    uow.publish(JobCompleted(
        federation=job.federation, job_id=job.job_id, name=job.name, status=view.status,
        duration_s=round(duration, 3), reason=reason or job.abort_reason, result=result,
        result_ref=result.locator if result else None,
    ))
    return True
