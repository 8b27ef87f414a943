"""Waiting for processes to end, where a zombie counts as ended.

psutil.wait_procs waits until a pid is gone. For a process that is not our child that
means until its new parent reaps it, and a container's init (PID 1) may reap orphans
only every second or two. A zombie holds no port, file or memory: it has stopped.
"""
from __future__ import annotations

import time
from collections.abc import Iterable

import psutil

_POLL_S = 0.02


def ended(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_ended(procs: Iterable[psutil.Process], timeout: float
               ) -> tuple[list[psutil.Process], list[psutil.Process]]:
    """(ended, still running) after at most `timeout` seconds."""
    alive = list(procs)
    done: list[psutil.Process] = []
    deadline = time.monotonic() + timeout
    while alive:
        for proc in [p for p in alive if ended(p)]:
            alive.remove(proc)
            done.append(proc)
        if not alive or time.monotonic() >= deadline:
            break
        time.sleep(_POLL_S)
    return done, alive
