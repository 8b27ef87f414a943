"""A federation run by the real provisioner and deployer (in this process, on one embedded
bus) with real NVFlare on loopback: what the renewal benchmark restarts a site in, by a
plain RestartSite and by a renewal, and times until the site has registered again."""
from __future__ import annotations

import time
from pathlib import Path

from arcflare.client import Client
from arcflare.contracts.base import Command
from arcflare.contracts.commands import CreateFederation
from arcflare.deployer.bootstrap import bootstrap as deployer
from arcflare.deployer.settings import DeployerSettings
from arcflare.provisioner.bootstrap import bootstrap as provisioner
from arcflare.provisioner.settings import ProvisionerSettings
from arcflare.trust.local import DEFAULT_OPERATORS, ensure_local_identities

from tests.support.flare_processes import kill_all_in

ADMIN = "admin@arcflare.local"
FED = "rollbench"
#: what a client logs once the server has accepted it
REGISTERED = "Successfully registered client:"
TIMEOUT_S = 180.0


class RollStack:
    def __init__(self, data_dir: Path, sites: list[str]) -> None:
        ensure_local_identities(data_dir, operators=DEFAULT_OPERATORS)
        common = {"data_dir": data_dir, "log_level": "WARNING"}
        self.data_dir, self.sites = data_dir, sites
        self.services = [provisioner(ProvisionerSettings(**common)),
                         deployer(DeployerSettings(**common, watch_interval_s=0.5))]
        self.client = Client(ProvisionerSettings(data_dir=data_dir), issued_by=ADMIN)

    def start(self) -> None:
        for service in self.services:
            service.start()
        before = {site: self.registrations(site) for site in self.sites}
        created = self.client.wait(self.client.send(CreateFederation(
            name=FED, auto_deploy=True, heart_beat_timeout_s=30,
            sites=[{"name": s, "org": "hospital"} for s in self.sites],
            admins=[{"email": ADMIN, "org": "consortium", "role": "project_admin"}])),
            timeout=120)
        if created.type != "FederationProvisioned":
            raise RuntimeError(f"the federation was not provisioned: {created.payload}")
        for site in self.sites:
            self._registered_after(site, before[site], time.perf_counter())

    def registrations(self, site: str) -> int:
        log = self.data_dir / "sites" / FED / site / "log.txt"
        return log.read_text(errors="replace").count(REGISTERED) if log.is_file() else 0

    def reconnect_seconds(self, command: Command, site: str) -> float:
        """Seconds from sending `command` until `site` has registered with the server again."""
        before = self.registrations(site)
        started = time.perf_counter()
        self.client.send(command)
        return self._registered_after(site, before, started)

    def _registered_after(self, site: str, before: int, started: float) -> float:
        while self.registrations(site) <= before:
            if time.perf_counter() - started > TIMEOUT_S:
                raise TimeoutError(f"{site} did not register again within {TIMEOUT_S:.0f} s")
            time.sleep(0.02)
        return time.perf_counter() - started

    def close(self) -> None:
        self.client.close()
        for service in reversed(self.services):
            service.stop(timeout=15)
        kill_all_in(self.data_dir)
