"""The NVFlare processes a deployer started under a data dir, found by the workspace marker
it puts in their environment — for tests that must leave none behind."""
from __future__ import annotations

from pathlib import Path

import psutil
from arcflare.deployer.adapters.processes import MARKER


def processes_in(data_dir: Path) -> list[psutil.Process]:
    """Every process the deployer started under this data dir (NVFlare's job processes too)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(MARKER, "").startswith(str(data_dir)):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def kill_all_in(data_dir: Path) -> None:
    procs = processes_in(data_dir)
    for proc in procs:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=10)
