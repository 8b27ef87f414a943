"""A deployer killed with SIGKILL mid-deploy and started again: one copy of everything."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from arcflare.bus.sqlite import SqliteBus
from arcflare.client import Client
from arcflare.runtime.settings import Settings
from dep_kits import ADMIN, provision
from dep_service import (
    connected,
    federation_provisioned,
    processes_in,
    publish,
    settings,
    site_provisioned,
    wait_for,
)

from tests.support.topology import short_lock_topology

pytestmark = [pytest.mark.nvflare, pytest.mark.chaos]
CHILD = Path(__file__).with_name("deployer_child.py")


def start_deployer(data_dir: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "ARCFLARE_DATA_DIR": str(data_dir), "ARCFLARE_WATCH_INTERVAL_S": "0.5",
           "ARCFLARE_ARTIFACT_FOLDER": str(data_dir.parent / "artifacts"),
           "ARCFLARE_LOG_FORMAT": "json", "ARCFLARE_RETRY_BACKOFF_MAX_S": "1"}
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, str(CHILD)], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def participants(data_dir: Path, entry: str) -> dict[str, int]:
    """NVFlare server or client processes (not their job processes) by workspace name."""
    found: dict[str, int] = {}
    for proc in processes_in(data_dir):
        try:
            if entry not in " ".join(proc.cmdline()) or proc.status() == psutil.STATUS_ZOMBIE:
                continue
            name = Path(proc.environ()["ARCFLARE_WORKSPACE"]).name
        except psutil.Error:
            continue
        found[name] = found.get(name, 0) + 1
    return found


def test_a_deployer_killed_mid_deploy_restarts_without_a_second_copy_and_reports_the_dead(
        tmp_path, data_dir):
    kits = provision(tmp_path / "prov", "fedchaos", ["site-1", "site-2"])
    settings(data_dir)  # the local identities, as `local up` would make them
    bus = SqliteBus(data_dir / "bus.db", topology=short_lock_topology())
    client = Client(Settings(data_dir=data_dir), bus=bus, issued_by=ADMIN)
    deployers = [start_deployer(data_dir, tmp_path / "deployer-1.log")]
    try:
        publish(bus, data_dir, federation_provisioned(kits, auto_deploy=True),
                site_provisioned(kits, "site-1", deploy=True),
                site_provisioned(kits, "site-2", deploy=True))
        # the server process exists but is not yet accepting: the deployer is mid-deploy
        assert wait_for(lambda: participants(data_dir, "server_train"), timeout=60, poll=0.05)
        deployers[0].send_signal(signal.SIGKILL)
        deployers[0].wait(timeout=10)

        deployers.append(start_deployer(data_dir, tmp_path / "deployer-2.log"))
        seen: set[tuple[str, str]] = set()
        for envelope in client.follow(types=["ServerDeployed", "SiteDeployed"], timeout=120):
            seen.add((envelope.type, envelope.payload.get("site", "server")))
            if len(seen) == 3:
                break

        assert seen == {("ServerDeployed", "server"), ("SiteDeployed", "site-1"),
                        ("SiteDeployed", "site-2")}
        assert wait_for(lambda: connected(kits, ["site-1", "site-2"]))
        assert participants(data_dir, "server_train") == {"server": 1}
        assert participants(data_dir, "client_train") == {"site-1": 1, "site-2": 1}

        # a site that dies while no deployer runs is reported by the next one
        deployers[-1].send_signal(signal.SIGKILL)
        deployers[-1].wait(timeout=10)
        site_2 = next(p for p in processes_in(data_dir)
                      if p.environ()["ARCFLARE_WORKSPACE"].endswith("/site-2")
                      and "client_train" in " ".join(p.cmdline()))
        site_2.kill()
        site_2.wait(timeout=10)
        deployers.append(start_deployer(data_dir, tmp_path / "deployer-3.log"))
        crashed = next(client.follow(types=["SiteStopped"], timeout=60))

        assert crashed.payload == {"federation": kits.federation, "site": "site-2",
                                   "reason": "crashed", "generation": 1}
        assert participants(data_dir, "server_train") == {"server": 1}
        assert participants(data_dir, "client_train") == {"site-1": 1}
    finally:
        for deployer in deployers:
            if deployer.poll() is None:
                os.killpg(deployer.pid, signal.SIGKILL)
                deployer.wait(timeout=10)
        client.close()
