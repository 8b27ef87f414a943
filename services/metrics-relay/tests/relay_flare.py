"""A real NVFlare federation on loopback for tests: provisioned with nvflare's own
provisioner, server and clients started as process groups that are always killed.

(Until the provisioner and deployer services can stand one up for us.)
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import psutil

from tests.support.flare_project import free_port  # noqa: F401 (re-exported)
from tests.support.flare_project import provision as provision_project

ADMIN = "admin@arcflare.local"
PYTHON = Path(sys.executable)


def provision(root: Path, project: str, sites: list[str], identities_from: Path) -> Path:
    """Kits for localhost:<free port>, sites and one project admin, with the bridge's and the
    agents' identities from the local root in `identities_from`; returns prod_00."""
    prod, _ = provision_project(root, project, sites, admin=ADMIN,
                                identities_from=identities_from)
    _local_resources(prod / "localhost", server=True)
    for site in sites:
        _local_resources(prod / site, server=False)
    return prod


def _local_resources(kit: Path, *, server: bool) -> None:
    """Job store and snapshots inside the workspace, a short heartbeat timeout, and
    the `arcflare.` prefix on the class allow-list (the bridge is ours)."""
    resources = json.loads((kit / "local" / "resources.json.default").read_text())
    resources["class_allow_list"] = [*resources.get("class_allow_list", []), "arcflare."]
    if server:
        resources["servers"][0]["heart_beat_timeout"] = 20
        resources["snapshot_persistor"]["args"]["storage"]["args"]["root_dir"] = \
            str(kit / "snapshot-storage")
        for component in resources["components"]:
            if component["id"] == "job_manager":
                component["args"]["uri_root"] = str(kit / "jobs-storage")
    (kit / "local" / "resources.json").write_text(json.dumps(resources, indent=2))


def _start(kit: Path, module: str, args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PATH": f"{PYTHON.parent}:{os.environ.get('PATH', '')}",
           "PYTHONUNBUFFERED": "1"}
    log = open(kit / "stdout.txt", "ab")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(
        [str(PYTHON), "-u", "-m", module, "-m", str(kit), *args],
        cwd=kit, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    """Kill the process group and every descendant: NVFlare's job processes (server job,
    client worker) run in sessions of their own, out of reach of killpg."""
    try:
        descendants = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
    for child in descendants:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(descendants, timeout=10)


@contextmanager
def running_federation(prod: Path, sites: list[str], *, timeout: float = 90):
    """Start server and clients; yields once every client has registered."""
    procs: list[subprocess.Popen] = []
    try:
        procs.append(_start(prod / "localhost", "nvflare.private.fed.app.server.server_train",
                            ["-s", "fed_server.json", "--set", "secure_train=true", "org=arc",
                             "config_folder=config"]))
        for site in sites:
            procs.append(_start(prod / site, "nvflare.private.fed.app.client.client_train",
                                ["-s", "fed_client.json", "--set", "secure_train=true",
                                 f"uid={site}", "org=arc", "config_folder=config"]))
        _wait_registered(prod, sites, timeout)
        yield procs
    finally:
        for proc in reversed(procs):
            _stop(proc)


def _wait_registered(prod: Path, sites: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logs = [(prod / s / "log.txt") for s in sites]
        if all(p.exists() and "Successfully registered client" in p.read_text() for p in logs):
            return
        time.sleep(0.5)
    raise TimeoutError(f"clients {sites} did not register within {timeout} s; see {prod}/*/log.txt")


@contextmanager
def admin_session(prod: Path):
    from nvflare.fuel.flare_api.flare_api import new_secure_session

    session = new_secure_session(ADMIN, str(prod / ADMIN), timeout=30)
    try:
        yield session
    finally:
        session.close()


CLIENT_SCRIPT = '''\
"""Trains nothing: adds 1 to every weight and logs deterministic metrics per round."""
import nvflare.client as flare
from nvflare.client.tracking import SummaryWriter

flare.init()
site = flare.get_site_name()
offset = int(site.rsplit("-", 1)[-1])
writer = SummaryWriter()
while flare.is_running():
    model = flare.receive()
    r = model.current_round
    writer.add_scalar("train_loss", offset + 1.0 / (r + 1), global_step=r)
    writer.add_scalar("accuracy", offset / 10 + r / 100, global_step=r)
    flare.send(flare.FLModel(params={k: v + 1 for k, v in model.params.items()},
                             metrics={"accuracy": offset / 10 + r / 100}))
'''


def expected_history(site: str, rounds: int) -> dict[str, list[tuple[int, float]]]:
    offset = int(site.rsplit("-", 1)[-1])
    return {"train_loss": [(r, offset + 1.0 / (r + 1)) for r in range(rounds)],
            "accuracy": [(r, offset / 10 + r / 100) for r in range(rounds)]}


def export_job(root: Path, name: str, rounds: int, bridge: dict | None) -> Path:
    """A numpy FedAvg recipe job whose clients log metrics; with the bridge if given
    (what the job-controller does to every job)."""
    import numpy as np
    from nvflare.app_common.np.recipes.fedavg import NumpyFedAvgRecipe

    root.mkdir(parents=True, exist_ok=True)
    script = root / "client.py"
    script.write_text(CLIENT_SCRIPT)
    recipe = NumpyFedAvgRecipe(name=name, model=np.zeros((2, 2)).tolist(), min_clients=2,
                               num_rounds=rounds, train_script=str(script))
    recipe.export(str(root / "jobs"))
    job = root / "jobs" / name
    if bridge is not None:
        config = job / "app" / "config" / "config_fed_server.json"
        server = json.loads(config.read_text())
        server["components"].append(
            {"id": "arcflare_bridge", "path": "arcflare.flare.bridge.BusBridge", "args": bridge})
        config.write_text(json.dumps(server, indent=2))
    return job


def run_job(prod: Path, job: Path, results: Path, timeout: float = 300) -> tuple[str, dict]:
    """Submit, wait for the end, download the result into results/<job_id>."""
    import shutil

    with admin_session(prod) as session:
        job_id = session.submit_job(str(job))
        _, meta = session.monitor_job_and_return_job_meta(job_id, timeout=timeout)
        downloaded = Path(session.download_job_result(job_id))
    shutil.copytree(downloaded, results / job_id)
    return job_id, meta
