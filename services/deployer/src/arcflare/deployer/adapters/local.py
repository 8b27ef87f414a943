"""The local compute: NVFlare server and clients as process groups on this machine.

Each participant runs in its own workspace, data_dir/sites/<federation>/<participant>/,
a copy of its kit (the kit store stays pristine). We run the kit's own
`startup/sub_start.sh --once`: the kit's exact command line (org, config folder,
--set options) without the start.sh watchdog, which sleeps 5 s before starting and
silently restarts a dead process — a crash here must be seen and reported, and a
restart is an explicit RestartSite. The script execs Python, so the pid we record
is NVFlare's own.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

from arcflare.deployer.adapters.local_inputs import bound_inputs, input_environment
from arcflare.deployer.adapters.processes import (
    MARKER,
    ProcessRef,
    ProcessTable,
    find_running,
    listener_of,
    remember,
)
from arcflare.deployer.compute import (
    SERVER,
    Compute,
    DeploymentError,
    Observation,
    Placement,
    Target,
)
from arcflare.deployer.kits import check_local_kit, parse_kit_ref, server_port
from arcflare.flare.site_inputs import write_inputs

#: NVFlare's default job store and snapshot root; pointed into the workspace instead
_NVFLARE_TMP = "/tmp/nvflare"


class LocalCompute(Compute):
    backend = "local"
    #: a local server listens a few seconds after its start; announce it promptly
    starting_poll_s = 0.2

    def __init__(self, data_dir: Path, *, stop_grace_s: float = 10.0,
                 ready_timeout_s: float = 60.0) -> None:
        self.sites_dir = Path(data_dir) / "sites"
        self.stop_grace_s = stop_grace_s
        self.ready_timeout_s = ready_timeout_s
        self.processes = ProcessTable()
        self._locks: dict[Path, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._stopping: set[tuple[int, float]] = set()

    def workspace(self, target: Target, kit: Path) -> Path:
        return self.sites_dir / target.federation / kit.name

    def deploy(self, target: Target, previous: Placement | None = None) -> Placement:
        kit = parse_kit_ref(target.kit_ref)
        if kit.scheme != "file" or kit.path is None:
            raise DeploymentError(
                f"{target.name}: kit {target.kit_ref} is an Azure ML asset but compute.backend "
                "is local; use a file: kit or set compute.backend to azureml"
            )
        workspace = self.workspace(target, kit.path)
        with self._lock_for(workspace):
            running = find_running(workspace)
            if running is not None:
                placement = self._placement(running, workspace, target, adopted=True)
            else:
                check_local_kit(kit.path, target.role)
                inputs = bound_inputs(target)
                port = server_port(kit.path) if target.role == "server" else None
                if port is not None:
                    _check_port_free(port)
                _fresh_workspace(kit.path, workspace)
                write_inputs(workspace, inputs)
                ref = self.processes.spawn(
                    ["bash", str(workspace / "startup" / "sub_start.sh"), "--once"],
                    cwd=workspace, env=_environment(workspace, target) | input_environment(inputs),
                    log=workspace / "console.txt",
                )
                remember(workspace, ref)
                placement = self._placement(ref, workspace, target, adopted=False)
            if target.name == SERVER and not _accepts(server_port(workspace)):
                # sites are started meanwhile (their clients retry until the server listens),
                # as a person starting kits by hand would; the watcher announces the server
                placement = replace(placement, ready=False)
            return placement

    def stop(self, placement: Placement) -> None:
        ref = _ref(placement)
        self._stopping.add((ref.pid, ref.create_time))
        self.processes.stop(ref, self.stop_grace_s)

    def observe(self, placement: Placement) -> Observation:
        ref = _ref(placement)
        workspace = Path(placement.workspace or ".")
        port = None if placement.ready else _listening_port(workspace)
        if not self.processes.alive(ref):
            code = self.processes.exit_code(ref)
            detail = f"exit code {code}" if code is not None else "process is gone"
            if port is not None:
                return Observation("failed", f"server exited before accepting connections on "
                                             f"port {port} ({detail}); {_log_tail(workspace)}")
            return Observation("exited", f"{detail}; {_log_tail(workspace)}")
        if port is None or _accepts(port):
            return Observation("running")
        if time.time() - (placement.create_time or 0) > self.ready_timeout_s:
            return Observation("failed", f"server did not accept connections on port {port} "
                                         f"within {self.ready_timeout_s:.0f} s and was stopped; "
                                         f"{_log_tail(workspace)}")
        return Observation("starting")

    def expected_exit(self, placement: Placement) -> bool:
        return (placement.pid, placement.create_time) in self._stopping

    def stopped_with_stack(self, placement: Placement) -> bool:
        # written by the local stack's supervisor (arcflare.localstack) before it stops
        # whatever NVFlare processes are left under the data dir
        try:
            stopped = json.loads((self.sites_dir.parent / "run" / "stopped.json").read_text())
        except (OSError, ValueError):
            return False
        return any(p.get("pid") == placement.pid and placement.create_time is not None
                   and abs(p.get("create_time", 0) - placement.create_time) < 0.05
                   for p in stopped)

    def _placement(self, ref: ProcessRef, workspace: Path, target: Target, *,
                   adopted: bool) -> Placement:
        return Placement(backend=self.backend, handle=str(ref.pid), pid=ref.pid, pgid=ref.pgid,
                         create_time=ref.create_time, workspace=str(workspace),
                         generation=target.generation, adopted=adopted)

    def _lock_for(self, workspace: Path) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(workspace, threading.Lock())


def _ref(placement: Placement) -> ProcessRef:
    assert placement.pid is not None and placement.create_time is not None
    return ProcessRef(placement.pid, placement.pgid or placement.pid, placement.create_time)


def _listening_port(workspace: Path) -> int | None:
    """The port a server workspace must accept connections on; None for a site's."""
    if not (workspace / "startup" / "fed_server.json").is_file():
        return None
    return server_port(workspace)


def _accepts(port: int | None) -> bool:
    if port is None:
        return True
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # REUSEADDR: a port left in TIME_WAIT by a stopped server is free; a listener is not
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            holder = listener_of(port) or "another process"
            raise DeploymentError(
                f"server port {port} is already in use by {holder}; stop it, or re-provision "
                "the federation with another server.port"
            ) from None


def _fresh_workspace(kit: Path, workspace: Path) -> None:
    """Kit files copied afresh; logs and job folders of earlier runs stay for diagnosis."""
    workspace.mkdir(parents=True, exist_ok=True, mode=0o700)
    for part in ("startup", "local", "transfer"):
        shutil.rmtree(workspace / part, ignore_errors=True)
        if (kit / part).is_dir():
            shutil.copytree(kit / part, workspace / part, symlinks=False)
    for folder in ("tmp", "home", "transfer"):
        (workspace / folder).mkdir(exist_ok=True)
    for stale in ("pid.fl", "daemon_pid.fl", "shutdown.fl", "restart.fl"):
        (workspace / stale).unlink(missing_ok=True)
    _point_storage_into(workspace)


def _point_storage_into(workspace: Path) -> None:
    """NVFlare keeps jobs and snapshots under /tmp/nvflare by default; keep them here."""
    local = workspace / "local"
    resources = local / "resources.json"
    if not resources.exists() and (local / "resources.json.default").exists():
        shutil.copy(local / "resources.json.default", resources)
    if not resources.exists():
        return
    text = resources.read_text()
    if _NVFLARE_TMP in text:
        config = json.loads(text)
        resources.write_text(json.dumps(_replace_prefix(config, str(workspace / "storage")),
                                        indent=2))


def _replace_prefix(value: object, root: str) -> object:
    if isinstance(value, dict):
        return {k: _replace_prefix(v, root) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_prefix(v, root) for v in value]
    if isinstance(value, str) and value.startswith(_NVFLARE_TMP):
        return root + value[len(_NVFLARE_TMP):]
    return value


#: of the deployer's own settings, only where the bus is goes to NVFlare: the bridge in the
#: server reports there (unless its job names the bus); never the deployer's identity
BUS_VARIABLES = ("ARCFLARE_BUS", "ARCFLARE_BUS_FILE", "ARCFLARE_SERVICEBUS_NAMESPACE",
                 "ARCFLARE_SERVICEBUS_CONNECTION_STRING")


def _environment(workspace: Path, target: Target) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if (not k.startswith("ARCFLARE_") or k in BUS_VARIABLES) and k != "NVFL_WORKSPACE"}
    # python3 in the kit's scripts must be this project's interpreter (it has nvflare)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    # nothing outside the data dir: temp files and any ~/.cache land in the workspace
    for name in ("TMPDIR", "TMP", "TEMP"):
        env[name] = str(workspace / "tmp")
    env["HOME"] = str(workspace / "home")
    env["PYTHONUNBUFFERED"] = "1"
    env[MARKER] = str(workspace)
    env["ARCFLARE_FEDERATION"] = target.federation
    env["ARCFLARE_PARTICIPANT"] = target.name
    return env


def _log_tail(workspace: Path, lines: int = 5) -> str:
    for name in ("error_log.txt", "log.txt", "console.txt"):
        path = workspace / name
        if path.is_file() and path.stat().st_size:
            tail = path.read_text(errors="replace").strip().splitlines()[-lines:]
            return f"last lines of {path}: " + " | ".join(line.strip()[:200] for line in tail)
    return f"no log in {workspace}"
