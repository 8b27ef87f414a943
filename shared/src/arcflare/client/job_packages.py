"""A job from this machine as a reference the job-controller can fetch from anywhere.

A folder is packed deterministically (the same folder gives the same sha256, and the
store keeps it once); an archive (.zip, .tar, .tar.gz) goes up as it is. Either way only
the reference travels on the bus, never a path of this machine.
"""
from __future__ import annotations

from pathlib import Path

from arcflare.artifacts import ArtifactStore
from arcflare.artifacts.folders import put_folder
from arcflare.contracts.artifacts import GZIP, JOB_PACKAGE, TAR, ZIP
from arcflare.contracts.commands import ArtifactPackage

ARCHIVES = {".zip": ZIP, ".tar": TAR, ".tar.gz": GZIP, ".tgz": GZIP}


def job_name(path: Path) -> str:
    """A job's default name: its folder's or archive's name without the suffixes."""
    return Path(path).name.split(".")[0]


def upload_job(store: ArtifactStore, path: Path) -> ArtifactPackage:
    """Upload a job folder or archive; ValueError (PackingError) names what is wrong."""
    path = Path(path)
    if path.is_dir():
        return ArtifactPackage(ref=put_folder(store, path, JOB_PACKAGE, area="packages"))
    suffix = next((s for s in sorted(ARCHIVES, key=len, reverse=True)
                   if path.name.endswith(s)), None)
    if path.is_file() and suffix:
        return ArtifactPackage(ref=store.put(path, ARCHIVES[suffix], area="packages"))
    raise ValueError(f"{path} is neither a job folder nor a "
                     f"{'/'.join(sorted(ARCHIVES))} archive")
