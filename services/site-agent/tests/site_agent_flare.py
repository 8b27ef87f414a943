"""A real NVFlare federation on loopback: kits provisioned with nvflare itself, the
server and clients started the way the deployer starts them (sub_start.sh --once,
each in its own process group), always killed by the test that started them."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psutil

from tests.support.flare_project import free_port, wait_listening  # noqa: F401 (re-exported)
from tests.support.flare_project import provision as provision_project

VENV_BIN = Path(sys.executable).parent
ADMIN = "admin@arcflare.test"


def provision(workdir: Path, federation: str, sites: list[str]) -> tuple[Path, int]:
    """Kits in workdir/ws/<federation>/prod_00; returns that folder and the server port."""
    return provision_project(workdir, federation, sites, admin=ADMIN)


def place(kit: Path, workspace: Path, *, server_port: int | None = None) -> Path:
    """Copy a kit to its workspace; optionally point a client at another server port."""
    shutil.copytree(kit, workspace)
    local = workspace / "local"
    resources = json.loads((local / "resources.json.default").read_text())
    if "servers" in resources:  # keep NVFlare's job store and snapshots inside the workspace
        resources["servers"][0]["heart_beat_timeout"] = 15
        resources["snapshot_persistor"]["args"]["storage"]["args"]["root_dir"] = str(
            workspace / "snapshot-storage")
        for component in resources.get("components", []):
            if component["id"] == "job_manager":
                component["args"]["uri_root"] = str(workspace / "jobs-storage")
    (local / "resources.json").write_text(json.dumps(resources, indent=2))
    if server_port is not None:
        config_file = workspace / "startup" / "fed_client.json"
        config = json.loads(config_file.read_text())
        host = config["servers"][0]["service"]["target"].rsplit(":", 1)[0]
        config["servers"][0]["service"]["target"] = f"{host}:{server_port}"
        config_file.write_text(json.dumps(config, indent=2))
    return workspace


def start(workspace: Path) -> subprocess.Popen:
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "ARCFLARE_WORKSPACE": str(workspace)}
    with open(workspace / "console.txt", "ab") as console:
        return subprocess.Popen(["bash", "startup/sub_start.sh", "--once"], cwd=workspace,
                                env=env, start_new_session=True, stdin=subprocess.DEVNULL,
                                stdout=console, stderr=subprocess.STDOUT)


def kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def kill_everything_in(workspace: Path) -> None:
    """Process groups of any NVFlare process running from this workspace (e.g. one the
    agent restarted), found by the workspace path on its command line."""
    target = str(workspace)
    for proc in psutil.process_iter(["cmdline"]):
        args = proc.info.get("cmdline") or []
        if "-m" in args and target in args and any("nvflare" in a for a in args):
            try:
                os.killpg(os.getpgid(proc.pid), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
