from __future__ import annotations

import sys
from pathlib import Path

import psutil
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from arcflare.deployer.adapters.processes import MARKER  # noqa: E402


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


@pytest.fixture
def data_dir(tmp_path: Path):
    """A data dir whose processes are all killed when the test ends, whatever happened."""
    path = tmp_path / "data"
    path.mkdir()
    yield path
    kill_all_in(path)
