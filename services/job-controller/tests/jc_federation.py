"""A real NVFlare federation on loopback for tests and benchmarks.

Provisioned with `nvflare provision` on a free port, heart_beat_timeout short,
job store and snapshots inside the workspace; server and clients run as their
own process groups (the NVFlare module entry points, without the watchdog
script, so a killed client stays dead) and are always killed in stop().
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from tests.support.flare_project import ADMIN, free_port, provision

PROJECT = "fedtest"


class LocalFederation:
    def __init__(self, root: Path, sites: list[str], heart_beat_timeout: int = 10) -> None:
        self.root, self.sites, self.heart_beat_timeout = root, sites, heart_beat_timeout
        self.procs: dict[str, subprocess.Popen] = {}
        self.port = free_port()
        self.kits: Path | None = None

    @property
    def admin_kit(self) -> Path:
        assert self.kits
        return self.kits / ADMIN

    def provision(self) -> None:
        self.kits, _ = provision(self.root, PROJECT, self.sites, port=self.port, admin=ADMIN)
        self._configure_server(self.kits / "localhost")
        for site in self.sites:
            local = self.kits / site / "local"
            (local / "resources.json").write_text((local / "resources.json.default").read_text())

    def _configure_server(self, kit: Path) -> None:
        resources = json.loads((kit / "local" / "resources.json.default").read_text())
        resources["servers"][0]["heart_beat_timeout"] = self.heart_beat_timeout
        resources["class_allow_list"].append("arcflare.flare.")
        resources["snapshot_persistor"]["args"]["storage"]["args"]["root_dir"] = str(kit / "snapshots")
        for component in resources["components"]:
            if component["id"] == "job_manager":
                component["args"]["uri_root"] = str(kit / "jobs-storage")
        (kit / "local" / "resources.json").write_text(json.dumps(resources, indent=2))

    def _spawn(self, name: str, module: str, config: str, extra: list[str]) -> None:
        kit = self.kits / name
        env = {**os.environ, "PYTHONPATH": str(kit / "local")}
        with open(kit / "process.out", "ab") as log:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-u", "-m", module, "-m", str(kit), "-s", config,
                 "--set", "secure_train=true", "org=arc", "config_folder=config", *extra],
                cwd=kit, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def admit_bridge(self, data_dir: Path) -> None:
        """Put into the server kit the bridge identity that data_dir's local root issues, as
        the provisioner does: the bridge signs what it reports with it, and the services of
        that data dir trust it. Read at each job's start, so a test can install its own."""
        from arcflare.trust import local
        from arcflare.trust.kits import kit_identity

        issued = local.bridge_identity(data_dir, PROJECT)
        target = kit_identity(self.kits / "localhost").directory
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(issued.directory, target)

    def start_server(self) -> None:
        self._spawn("localhost", "nvflare.private.fed.app.server.server_train", "fed_server.json", [])

    def start_client(self, site: str) -> None:
        self._spawn(site, "nvflare.private.fed.app.client.client_train", "fed_client.json", [f"uid={site}"])

    def start(self) -> None:
        self.start_server()
        for site in self.sites:
            self.start_client(site)

    def kill(self, name: str) -> None:
        """Kill the participant and every process it started (NVFlare runs each job in a
        worker process of its own session, which a process-group kill would miss)."""
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        try:
            family = psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for child in family:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        proc.wait(timeout=30)
        psutil.wait_procs(family, timeout=30)

    def drop_client(self, site: str) -> None:
        """Kill the site and have the server forget it now, not after its heart_beat_timeout
        (so what runs next sees the server without it)."""
        from nvflare.fuel.flare_api.flare_api import new_secure_session

        self.kill(site)
        sess = new_secure_session(ADMIN, str(self.admin_kit), timeout=10.0)
        try:
            sess.remove_client(site)
        finally:
            sess.close()

    def stop(self) -> None:
        for name in list(self.procs):
            self.kill(name)

    def wait_for_clients(self, count: int, timeout: float = 90.0) -> None:
        from nvflare.fuel.flare_api.flare_api import new_secure_session

        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                sess = new_secure_session(ADMIN, str(self.admin_kit), timeout=5.0)
                try:
                    if len(sess.get_system_info().client_info) >= count:
                        return
                finally:
                    sess.close()
            except Exception as exc:  # noqa: BLE001 - the server is still starting
                last_error = exc
            time.sleep(1.0)
        raise TimeoutError(f"{count} clients not connected within {timeout}s (last error: {last_error})")
