"""What NVFlare's own server logs say, and when: the observer both sides of a comparison
share. Reading the log costs the federation nothing (a FLARE API poll at 20 sites
would), and it is the same file whoever started the server.

Lines begin `2026-12-01 17:48:10,123 - ...` in local time; times are returned as epoch
seconds, comparable with time.time().
"""
from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import datetime
from pathlib import Path

_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
#: nvflare.private.fed.server.client_manager, when a client registers
_JOINED = re.compile(r"New client (\S+?)@\S+ joined")
#: nvflare.app_common.workflows.fedavg, as each round's tasks go out
_ROUND_SENT = "Sending task train to"


def _stamp(line: str) -> float | None:
    match = _STAMP.match(line)
    if not match:
        return None
    return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return []


def joined_at(server_workspace: Path) -> dict[str, float]:
    """Each client's first registration with the server."""
    joined: dict[str, float] = {}
    for line in _lines(server_workspace / "log.txt"):
        match = _JOINED.search(line)
        if match and match.group(1) not in joined:
            at = _stamp(line)
            if at is not None:
                joined[match.group(1)] = at
    return joined


def round_starts(server_workspace: Path, job_id: str) -> list[float]:
    """When the server sent each round's train tasks, in order (the job's server log)."""
    return [at for line in job_log(server_workspace, job_id)
            if _ROUND_SENT in line and (at := _stamp(line)) is not None]


def pickup_wait_s(server_workspace: Path, job_id: str) -> float | None:
    """The server stored the submitted job -> its job runner picked it up. The runner looks
    for new jobs once a second (nvflare/private/fed/server/job_runner.py, `time.sleep(1.0)`),
    so this is 0-1 s of that loop's phase, the same on either side of a comparison. From
    the job's meta in the job store: last_schedule_time - submit_time."""
    for store in _job_stores(server_workspace):
        try:
            meta = json.loads((store / job_id / "meta").read_text())
            return float(meta["last_schedule_time"]) - float(meta["submit_time"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None


def _job_stores(server_workspace: Path) -> tuple[Path, Path]:
    # the deployer points the job store into <workspace>/storage; a kit started by hand
    # (the bare baseline) keeps NVFlare's layout as its resources.json says
    return server_workspace / "storage" / "jobs-storage", server_workspace / "jobs-storage"


def job_log(server_workspace: Path, job_id: str) -> list[str]:
    """The job's server log.txt: in its run folder while it runs, afterwards in the job
    store's workspace archive (NVFlare removes the run folder when the job ends)."""
    running = server_workspace / job_id / "log.txt"
    if running.is_file():
        return _lines(running)
    for store in _job_stores(server_workspace):
        try:
            with zipfile.ZipFile(store / job_id / "workspace") as workspace, \
                    workspace.open("log.txt") as log:
                return io.TextIOWrapper(log, errors="replace").read().splitlines()
        except (OSError, KeyError, zipfile.BadZipFile):
            continue
    return []


def started_running_at(server_workspace: Path, job_id: str) -> float | None:
    """When the server's job runner moved the job to RUNNING (its clients deployed)."""
    marker = f"Job: {job_id} started to run"
    for line in _lines(server_workspace / "log.txt"):
        if marker in line:
            return _stamp(line)
    return None
