"""A site added by AddSite joins the running server: same CA, no server restart (real NVFlare)."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from arcflare.contracts.commands import AddSite

from .conftest import federation_spec

pytestmark = [pytest.mark.nvflare, pytest.mark.slow]


def start(kit: Path, runtime: Path) -> subprocess.Popen:
    """Run a participant from a copy of its kit, as the deployer does (sub_start.sh --once,
    its job store and snapshots inside the workspace)."""
    shutil.copytree(kit, runtime)
    resources = runtime / "local" / "resources.json"
    if resources.is_file():  # the kit keeps NVFlare's /tmp/nvflare defaults
        resources.write_text(resources.read_text().replace("/tmp/nvflare", str(runtime)))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.Popen(
        ["bash", str(runtime / "startup" / "sub_start.sh"), "--once"], cwd=runtime, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def log_shows(log: Path, text: str, process: subprocess.Popen, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.is_file() and text in log.read_text(errors="replace"):
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.5)
    return False


def test_site_added_after_the_server_started_registers_without_a_restart(harness):
    # Prepare: a provisioned federation whose server is already running
    created = harness.run(federation_spec(sites=1, heart_beat_timeout_s=10))
    sites = harness.settings.data_dir / "sites" / "demo"
    server = start(harness.kit(created.payload["server_kit"]), sites / "server")
    processes = [server]
    try:
        server_log = sites / "server" / "log.txt"
        assert log_shows(server_log, "Server started", server, timeout=60), "server did not start"

        # Execute: add a site to the live federation and start it
        added = harness.run(AddSite(federation="demo", site="late-site", org="latecomer"))
        client = start(harness.kit(added.payload["kit"]), sites / "late-site")
        processes.append(client)

        # Assert: the same server process accepts the new site's certificate
        assert log_shows(sites / "late-site" / "log.txt",
                         "Successfully registered client:late-site", client, timeout=90)
        assert log_shows(server_log, "New client late-site", server, timeout=10)
        assert server.poll() is None
        assert (sites / "server" / "jobs-storage").is_dir()  # job store inside its workspace
    finally:
        for process in reversed(processes):
            stop(process)
