"""A job's result, read from the artifact store only.

JobCompleted names the result by reference; it is fetched, verified and unpacked
within the caps into a scratch folder of the relay's own, used, and removed. A
`result_ref` that is not a reference (a path, as older job-controllers sent) is never
opened: whatever a message says, nothing of it becomes a path here.
"""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from arcflare.artifacts import ArtifactError, ArtifactMissing, ArtifactStore
from arcflare.artifacts.folders import fetch_folder
from arcflare.artifacts.unpacking import Caps, InvalidArchive
from arcflare.contracts.artifacts import JOB_RESULT
from arcflare.contracts.events import JobCompleted
from arcflare.metrics_relay.settings import MetricsRelaySettings
from arcflare.runtime import Rejected


@contextmanager
def job_result(evt: JobCompleted, artifacts: ArtifactStore,
               settings: MetricsRelaySettings) -> Iterator[Path | None]:
    """The unpacked result folder while the block runs; None when the job has none."""
    if evt.result is None:
        if evt.result_ref:
            raise Rejected("Forbidden", f"result_ref {evt.result_ref!r} is no reference into "
                                        "the artifact store; results are read from the store only",
                           [{"field": "result_ref", "problem": "not an artifact reference"}])
        yield None
        return
    named = f"result {evt.result.locator}"
    scratch = Path(tempfile.mkdtemp(prefix="result-", dir=_private(settings.data_dir / "results")))
    try:
        yield fetch_folder(artifacts, evt.result, scratch / "result", area="results",
                           caps=Caps(settings.max_result_bytes, settings.max_result_files),
                           media_types={JOB_RESULT}, what=named)
    except ArtifactError as exc:
        reason = "not_found" if isinstance(exc, ArtifactMissing) else "invalid"
        raise Rejected(reason, f"{named}: {exc.problem}",
                       [{"field": "result", "problem": exc.problem}]) from None
    except InvalidArchive as exc:
        raise Rejected("invalid", str(exc), [{"field": "result", "problem": str(exc)}]) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _private(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder
