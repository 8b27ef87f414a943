"""Certificates renewed in a running federation: real NVFlare on loopback, with the real
provisioner, deployer and job-controller (in this process, on one embedded bus).

A site renewed mid-federation is rolled onto its new kit and reconnects with the new
certificate, no other kit changes by a byte, and a job then completes on every site; the
server renewed is restarted from its new kit, its sites with it, and every client
registers with it again.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from arcflare.cli.main import app
from arcflare.client import Client
from arcflare.contracts.commands import CreateFederation, RecipePackage, RenewCertificate, SubmitJob
from arcflare.contracts.envelope import Envelope
from arcflare.deployer.bootstrap import bootstrap as deployer
from arcflare.deployer.settings import DeployerSettings
from arcflare.job_controller.bootstrap import bootstrap as job_controller
from arcflare.job_controller.settings import JobControllerSettings
from arcflare.provisioner.bootstrap import bootstrap as provisioner
from arcflare.provisioner.certificates import read_facts
from arcflare.provisioner.settings import ProvisionerSettings
from arcflare.runtime import Service
from arcflare.trust.local import DEFAULT_OPERATORS, ensure_local_identities
from nvflare.fuel.flare_api.api_spec import NoClientsAvailable
from nvflare.fuel.flare_api.flare_api import new_secure_session
from typer.testing import CliRunner

from tests.support.flare_processes import kill_all_in

pytestmark = [pytest.mark.nvflare, pytest.mark.slow, pytest.mark.timeout(900)]

FED = "renewals"
ADMIN = "admin@arcflare.local"
SITES = ("site-1", "site-2")
REGISTERED = "Successfully registered client:"


@dataclass
class Federation:
    data_dir: Path
    client: Client

    @property
    def kits(self) -> Path:
        return self.data_dir / "kits" / FED

    def workspace(self, participant: str) -> Path:
        return self.data_dir / "sites" / FED / participant

    def renew(self, participant: str) -> tuple[Envelope, Envelope]:
        """(CertificateRenewed, ParticipantRolled) of a renewal of `participant`."""
        command_id = self.client.send(RenewCertificate(federation=FED, participant=participant))
        renewed = self.client.wait(command_id, timeout=60)
        assert renewed.type == "CertificateRenewed", renewed.payload
        for env in self.client.follow(types=["ParticipantRolled", "RollRefused",
                                             "DeploymentFailed"], timeout=120):
            if env.correlation_id == command_id:
                return renewed, env
        raise AssertionError(f"no roll of {participant} within 120 s")

    def clients_seen_by_server(self) -> set[str]:
        """The clients the server lists as connected (FLARE API, with the admin's kit)."""
        session = new_secure_session(ADMIN, str(self.kits / ADMIN), timeout=30)
        try:
            meta = session.check_status("client")
        except NoClientsAvailable:
            return set()
        finally:
            session.close()
        return {c["client_name"] for c in meta.get("client_status", [])
                if c.get("status") != "no_reply"}


def until(condition, timeout: float, poll: float = 1.0):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(poll)


def kit_digests(kit: Path) -> dict[str, str]:
    return {str(p.relative_to(kit)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(kit.rglob("*")) if p.is_file()}


def key_material(folder: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted((folder / "startup").rglob("*"))
            if p.is_file() and (p.suffix == ".key" or p.name == "key.pem")]


def registrations(site_workspace: Path) -> int:
    log = site_workspace / "log.txt"
    return log.read_text(errors="replace").count(REGISTERED) if log.is_file() else 0


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    data_dir = tmp_path_factory.mktemp("renewal") / "data"
    ensure_local_identities(data_dir, operators=DEFAULT_OPERATORS)
    common = {"data_dir": data_dir, "retry_backoff_base_s": 0.1, "retry_backoff_max_s": 1}
    services: list[Service] = [
        provisioner(ProvisionerSettings(**common)),
        deployer(DeployerSettings(**common, watch_interval_s=0.5, stop_grace_s=5)),
        job_controller(JobControllerSettings(**common, job_poll_interval_s=0.5,
                                             status_poll_interval_s=0)),
    ]
    client = Client(ProvisionerSettings(data_dir=data_dir), issued_by=ADMIN)
    try:
        for service in services:
            service.start()
        created = client.wait(client.send(CreateFederation(
            name=FED, auto_deploy=True, heart_beat_timeout_s=30,
            sites=[{"name": s, "org": "hospital"} for s in SITES],
            admins=[{"email": ADMIN, "org": "consortium", "role": "project_admin"}])),
            timeout=120)
        assert created.type == "FederationProvisioned", created.payload
        running = Federation(data_dir, client)
        assert until(lambda: running.clients_seen_by_server() == set(SITES), 180), \
            "the sites did not connect"
        yield running
    finally:
        client.close()
        for service in reversed(services):
            service.stop(timeout=15)
        kill_all_in(data_dir)


def test_a_renewed_site_reconnects_with_its_new_certificate_and_a_job_completes(federation):
    # Prepare
    kits = federation.kits
    others = {name: kit_digests(kits / name) for name in ("site-2", "server", ADMIN)}
    old_keys = key_material(kits / "site-1")
    workspace = federation.workspace("site-1")
    registered_before = registrations(workspace)

    # Execute
    renewed, rolled = federation.renew("site-1")

    # Assert: rolled onto the new kit, and back on the server with the new certificate
    assert rolled.type == "ParticipantRolled", rolled.payload
    assert rolled.payload["restarted"] and rolled.payload["generation"] == 2
    new = renewed.payload["new_fingerprint"]
    assert read_facts(workspace / "startup" / "client.crt").fingerprint == new
    assert read_facts(kits / "site-1" / "startup" / "client.crt").fingerprint == new
    assert until(lambda: registrations(workspace) > registered_before, 90), \
        "site-1 did not register again after its roll"
    assert until(lambda: federation.clients_seen_by_server() == set(SITES), 90)
    # no other kit changed; the old private keys are in neither the new kit nor its run copy
    assert {name: kit_digests(kits / name) for name in others} == others
    for folder in (kits / "site-1", workspace):
        held = b"".join(key_material(folder))
        assert not any(key in held for key in old_keys)
    # the previous version went once the deployer reported the roll
    assert until(lambda: not (kits / ".previous" / "site-1").exists(), 30)

    # a job then runs to its end on both sites
    client = federation.client
    submitted = client.wait(client.send(SubmitJob(
        federation=FED, name="after-renewal", min_clients=len(SITES), timeout_s=300,
        package=RecipePackage(recipe="fedavg-logreg", parameters={"rounds": 2}))),
        timeout=120, settled=True)
    assert submitted.type == "JobSubmitted", submitted.payload
    assert sorted(submitted.payload["sites"]) == sorted(SITES)
    job_id = submitted.payload["job_id"]
    completed = next((e for e in client.follow(types=["JobCompleted"], timeout=300)
                      if e.payload["job_id"] == job_id), None)
    assert completed is not None, f"job {job_id} did not end within 300 s"
    assert completed.payload["status"] == "FINISHED:COMPLETED", completed.payload


def test_a_renewed_server_restarts_on_its_new_kit_and_every_client_reconnects(federation):
    server_log = federation.workspace("server") / "log.txt"
    lines_before = len(server_log.read_text(errors="replace").splitlines())

    # as an operator does it: the CLI waits through the renewal and the deployer's roll
    result = CliRunner().invoke(app, ["federation", "renew-server", FED, "--wait", "--json",
                                      "--data-dir", str(federation.data_dir), "--as", ADMIN])

    assert result.exit_code == 0, result.output[-3000:]
    answer = json.loads([line for line in result.stdout.splitlines()
                         if line.startswith('{"renewed"')][-1])
    renewed, rolled = answer["renewed"], answer["roll"]
    assert rolled["type"] == "ParticipantRolled", rolled
    assert rolled["payload"]["restarted"]
    assert sorted(rolled["payload"]["sites_restarted"]) == sorted(SITES)
    assert read_facts(federation.workspace("server") / "startup" / "server.crt").fingerprint \
        == renewed["payload"]["new_fingerprint"]
    # every client registers with the restarted server (its new key signs their new tokens)
    assert until(lambda: federation.clients_seen_by_server() == set(SITES), 120)
    since = "\n".join(server_log.read_text(errors="replace").splitlines()[lines_before:])
    for site in SITES:
        assert f"New client {site}" in since, since[-3000:]
    assert "invalid auth token signature" not in since
