"""Process groups: start one, know it again after a restart, stop all of it.

A process is identified by (pid, create_time), never by pid alone, because a pid
is reused once its process is gone. The process we start in a workspace is recorded
there (RECORD), and known again from that record. Every process we start also carries
ARCFLARE_WORKSPACE in its environment, so a running copy is found even when the
deployer died before it could record it.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil
from arcflare.runtime.processes import wait_ended

MARKER = "ARCFLARE_WORKSPACE"
#: the process started in a workspace, kept beside the kit's files. The process table
#: alone cannot name it at every moment: while `sub_start.sh --once` execs NVFlare, its
#: command line and environment read empty (2.5 ms at the median here, up to 5 ms), and a
#: deploy looking in that moment started a second copy of a running participant.
RECORD = "arcflare-process.json"
#: the kit script we start, and the module it execs (NVFlare's job processes run other
#: modules, so they never count as the participant itself)
_ENTRY_POINTS = ("startup/sub_start.sh",
                 "nvflare.private.fed.app.server.server_train",
                 "nvflare.private.fed.app.client.client_train")


@dataclass(frozen=True)
class ProcessRef:
    pid: int
    pgid: int
    create_time: float


class ProcessTable:
    """The processes this deployer started: Popen objects kept so their exit is reaped."""

    def __init__(self) -> None:
        self._children: dict[int, subprocess.Popen] = {}
        self._lock = threading.Lock()

    def spawn(self, argv: list[str], *, cwd: Path, env: dict[str, str], log: Path) -> ProcessRef:
        with open(log, "ab") as out:
            child = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        with self._lock:
            self._children[child.pid] = child
        return ProcessRef(child.pid, child.pid, psutil.Process(child.pid).create_time())

    def alive(self, ref: ProcessRef) -> bool:
        with self._lock:
            child = self._children.get(ref.pid)
        if child is not None and child.poll() is not None:
            return False
        return _is_running(ref)

    def exit_code(self, ref: ProcessRef) -> int | None:
        with self._lock:
            child = self._children.get(ref.pid)
        return None if child is None else child.poll()

    def stop(self, ref: ProcessRef, grace_s: float) -> None:
        """SIGTERM the group and every descendant (NVFlare job processes start their own
        sessions), then SIGKILL whatever is left after the grace period."""
        if not self.alive(ref):
            self._reap(ref.pid)
            return
        procs = _group_and_descendants(ref)
        _signal_all(ref.pgid, procs, signal.SIGTERM)
        _, alive = wait_ended(procs, timeout=grace_s)
        if alive:
            _signal_all(ref.pgid, alive, signal.SIGKILL)
            wait_ended(alive, timeout=5)
        self._reap(ref.pid)

    def _reap(self, pid: int) -> None:
        with self._lock:
            child = self._children.pop(pid, None)
        if child is not None:
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


def remember(workspace: Path, ref: ProcessRef) -> None:
    """Record the process just started in this workspace (see RECORD)."""
    (workspace / RECORD).write_text(json.dumps(asdict(ref)))


def find_running(workspace: Path) -> ProcessRef | None:
    """The NVFlare server or client process whose workspace this is, if one is running."""
    return _remembered(workspace) or _found_in_process_table(workspace)


def _is_running(ref: ProcessRef) -> bool:
    try:
        proc = psutil.Process(ref.pid)
        return (abs(proc.create_time() - ref.create_time) < 0.05
                and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _remembered(workspace: Path) -> ProcessRef | None:
    try:
        ref = ProcessRef(**json.loads((workspace / RECORD).read_text()))
    except (OSError, ValueError, TypeError):  # none recorded, or not a record we wrote
        return None
    return ref if _is_running(ref) else None


def _found_in_process_table(workspace: Path) -> ProcessRef | None:
    for proc in psutil.process_iter(["pid", "create_time", "cmdline"]):
        try:
            cmdline = " ".join(proc.info["cmdline"] or ())
            if not any(entry in cmdline for entry in _ENTRY_POINTS):
                continue
            if proc.environ().get(MARKER) != str(workspace):
                continue
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            return ProcessRef(proc.pid, os.getpgid(proc.pid), proc.info["create_time"])
        except (psutil.Error, ProcessLookupError):
            continue
    return None


def listener_of(port: int) -> str | None:
    """Who listens on this TCP port, for a message a person can act on."""
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                if conn.pid is None:
                    return "another process"
                try:
                    return f"pid {conn.pid} ({' '.join(psutil.Process(conn.pid).cmdline())[:80]})"
                except psutil.Error:
                    return f"pid {conn.pid}"
    except psutil.Error:
        return None
    return None


def _group_and_descendants(ref: ProcessRef) -> list[psutil.Process]:
    found: dict[int, psutil.Process] = {}
    try:
        leader = psutil.Process(ref.pid)
        found[leader.pid] = leader
        found.update({p.pid: p for p in leader.children(recursive=True)})
    except psutil.Error:
        pass
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == ref.pgid:
                found.setdefault(proc.pid, proc)
        except (ProcessLookupError, psutil.Error):
            continue
    return list(found.values())


def _signal_all(pgid: int, procs: list[psutil.Process], sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
    for proc in procs:
        try:
            proc.send_signal(sig)
        except psutil.Error:
            pass
