"""Deployer: from DeployServer to every site connected, for a 3-site local federation,
beside the same kits started by hand in the same run, with the command the deployer
itself runs: each kit's `startup/sub_start.sh --once` (start.sh would add its watchdog's
5 s sleep to the hand side only).

Both runs use copies of one set of kits (same port, one after the other) and the same
readiness probe: the server's port accepts, then FLARE API check_status lists every
site as connected. Runs alternate; each side's best run is judged (target <= 1.1).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.benchmarks.harness import ROOT, Results
from tests.benchmarks.noise import alternate, runs
from tests.support.flare_project import accepts

sys.path.insert(0, str(ROOT / "services" / "deployer" / "tests"))

from arcflare.client import Client
from arcflare.contracts.commands import DeployServer, DeploySite, TeardownFederation
from arcflare.deployer.settings import DeployerSettings
from arcflare.trust.local import DEFAULT_OPERATORS, ensure_local_identities
from dep_kits import ADMIN, SERVER_NAME, Kits, provision
from dep_service import (
    federation_provisioned,
    publish,
    site_provisioned,
    wait_for,
)
from nvflare.fuel.flare_api.api_spec import NoClientsAvailable
from nvflare.fuel.flare_api.flare_api import new_secure_session

SITES = ["site-1", "site-2", "site-3"]
TIMEOUT_S = 120.0


def run(results: Results) -> None:
    with tempfile.TemporaryDirectory(prefix="arcflare-bench-deployer-") as tmp:
        root = Path(tmp)
        kits = provision(root / "prov", "fedbench", SITES)
        seconds = alternate(runs(3, "deployer"),
                            deployer=lambda i: _with_deployer(kits, root / f"deployer-{i}"),
                            by_hand=lambda i: _by_hand(kits, root / f"hand-{i}"))
    results.compare("deployer.deploy_server_to_3_sites_connected", seconds["deployer"],
                    seconds["by_hand"], "s", target="<= 1.1",
                    note="by hand: each kit's sub_start.sh --once, the server first")


def _by_hand(kits: Kits, workdir: Path) -> float:
    """What a person does without the watchdog: each participant's own
    `startup/sub_start.sh --once`, the server first, all at once."""
    shutil.copytree(kits.root, workdir)
    groups: list[int] = []
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    started = time.monotonic()
    try:
        for participant in [SERVER_NAME, *SITES]:
            script = workdir / participant / "startup" / "sub_start.sh"
            proc = subprocess.Popen(["bash", str(script), "--once"], cwd=workdir / participant,
                                    env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    start_new_session=True)
            groups.append(proc.pid)
        _wait_all_connected(kits)
        return time.monotonic() - started
    finally:
        for pgid in groups:
            _kill_group(pgid)
        _kill_workspace_processes(workdir)
        _wait_port_free(kits.port)


def _with_deployer(kits: Kits, data_dir: Path) -> float:
    """The deployer as its own process (`python -m arcflare.deployer`, as in the stack and
    the images): run inside this one, its threads competed for the interpreter with the
    FLARE API session of the readiness probe, which then saw the sites ~1.5 s after they
    had registered (the server's log)."""
    data_dir.mkdir()
    ensure_local_identities(data_dir, operators=(*DEFAULT_OPERATORS, (ADMIN, "arc")))
    # the product's defaults (the tests' settings watch faster than a real deployer does);
    # the kits are laid out as the provisioner's store and announced by reference into the
    # artifact store they share, as the provisioner does
    env = {**os.environ, "ARCFLARE_DATA_DIR": str(data_dir),
           "ARCFLARE_KIT_ROOT": str(kits.root.parent),
           "ARCFLARE_ARTIFACT_FOLDER": str(kits.artifacts.root),
           "ARCFLARE_LOG_LEVEL": "WARNING", "ARCFLARE_HEALTH_PORT": "0"}
    with open(data_dir / "deployer.log", "ab") as log:
        deployer = subprocess.Popen([sys.executable, "-m", "arcflare.deployer"], env=env,
                                    cwd=data_dir, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
    client = Client(DeployerSettings(data_dir=data_dir, artifact_folder=kits.artifacts.root),
                    issued_by=ADMIN)
    try:
        publish(client.bus, data_dir, federation_provisioned(kits, auto_deploy=False),
                *[site_provisioned(kits, s, deploy=False) for s in SITES])
        _wait_provisioned(data_dir, kits, deployer)
        started = time.monotonic()
        client.send(DeployServer(federation=kits.federation))
        for site in SITES:
            client.send(DeploySite(federation=kits.federation, site=site))
        _wait_all_connected(kits)
        elapsed = time.monotonic() - started
        client.wait(client.send(TeardownFederation(federation=kits.federation)), timeout=60)
        return elapsed
    finally:
        client.close()
        deployer.terminate()
        try:
            deployer.wait(timeout=30)
        except subprocess.TimeoutExpired:
            _kill_group(deployer.pid)
            deployer.wait(timeout=10)
        _kill_workspace_processes(data_dir)
        _wait_port_free(kits.port)


def _wait_all_connected(kits: Kits) -> None:
    """The server's port accepts; then check_status shows every site connected."""
    if not wait_for(lambda: accepts(kits.port), timeout=TIMEOUT_S, poll=0.1):
        raise TimeoutError(f"server port {kits.port} never accepted connections")
    session = new_secure_session(ADMIN, str(kits.admin), timeout=TIMEOUT_S)
    try:
        def all_connected() -> bool:
            try:
                meta = session.check_status("client")
            except NoClientsAvailable:
                return False
            statuses = {c["client_name"]: c["status"] for c in meta.get("client_status", [])}
            return all(statuses.get(s) not in (None, "no_reply") for s in SITES)

        if not wait_for(all_connected, timeout=TIMEOUT_S, poll=0.1):
            raise TimeoutError("not every site connected")
    finally:
        session.close()


def _wait_provisioned(data_dir: Path, kits: Kits, deployer: subprocess.Popen) -> None:
    """The deployer has taken in the provisioning events (its state file, read only)."""
    import sqlite3

    def known() -> bool:
        if deployer.poll() is not None:
            raise RuntimeError(f"the deployer exited ({deployer.returncode}): see "
                               f"{data_dir / 'deployer.log'}")
        try:
            db = sqlite3.connect(f"file:{data_dir / 'deployer.db'}?mode=ro", uri=True)
            try:
                return db.execute("SELECT count(*) FROM sites WHERE federation=?",
                                  (kits.federation,)).fetchone()[0] == len(SITES)
            finally:
                db.close()
        except sqlite3.Error:  # not created yet, or its tables not yet
            return False
    if not wait_for(known, timeout=60, poll=0.05):
        raise TimeoutError("the deployer never took in the provisioning events")


def _wait_port_free(port: int) -> None:
    wait_for(lambda: not accepts(port), timeout=30, poll=0.2)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _kill_workspace_processes(folder: Path) -> None:
    """NVFlare processes whose command line names this folder (start.sh's python included)."""
    import psutil

    doomed = []
    for proc in psutil.process_iter(["cmdline"]):
        if str(folder) in " ".join(proc.info["cmdline"] or ()):
            doomed.append(proc)
            try:
                proc.kill()
            except psutil.Error:
                pass
    psutil.wait_procs(doomed, timeout=10)
