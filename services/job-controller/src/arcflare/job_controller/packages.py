"""Job packages: unpacked safely (arcflare.artifacts.unpacking) and checked as NVFlare jobs
before anything reaches NVFlare."""
from __future__ import annotations

import json
from pathlib import Path

from arcflare.artifacts.unpacking import Caps, InvalidArchive
from arcflare.artifacts.unpacking import unpack_archive as _unpack_archive

#: a package that can never be submitted; the message names what is wrong
InvalidPackage = InvalidArchive

__all__ = ["Caps", "InvalidPackage", "check_job_structure", "job_root", "unpack_archive"]


def unpack_archive(archive: Path, dest: Path, caps: Caps) -> Path:
    """Unpack a job archive into dest and return its job folder; nothing is left on failure."""
    return _unpack_archive(archive, dest, caps, what="package", locate=job_root)


def job_root(folder: Path) -> Path:
    """The folder holding meta.json: the folder itself or its single top-level folder."""
    if (folder / "meta.json").is_file():
        return folder
    children = [c for c in folder.iterdir() if not c.name.startswith(".")]
    if len(children) == 1 and children[0].is_dir() and (children[0] / "meta.json").is_file():
        return children[0]
    raise InvalidPackage("no meta.json found; an NVFlare job folder needs meta.json at its top")


def check_job_structure(folder: Path) -> dict:
    """meta.json with a deploy_map whose every app has config/config_fed_{server|client}.json."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except FileNotFoundError:
        raise InvalidPackage("package: meta.json is missing at the top of the job folder") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidPackage(f"package: meta.json is not valid JSON ({exc})") from None
    deploy_map = meta.get("deploy_map") if isinstance(meta, dict) else None
    if not isinstance(deploy_map, dict) or not deploy_map:
        raise InvalidPackage("package: meta.json needs a non-empty deploy_map {app folder: [sites]}")
    for app in deploy_map:
        config = folder / app / "config"
        if not (config / "config_fed_server.json").is_file() and not (config / "config_fed_client.json").is_file():
            raise InvalidPackage(
                f"package: app {app!r} needs {app}/config/config_fed_server.json or config_fed_client.json"
            )
    return meta
