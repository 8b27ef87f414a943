"""The FLARE admin logs in with the kit FederationProvisioned names — fetched from the artifact
store into the job-controller's own cache, never opened at a path a message gives. A path is
refused on arrival; a kit whose bytes do not match refuses the command that needed it, naming
the kit."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from arcflare.bus.port import SubQueue
from arcflare.client import Client
from arcflare.contracts.commands import RefreshFederationStatus
from arcflare.contracts.events import CertificateRenewed, FederationProvisioned
from arcflare.flare.kit_artifacts import put_kit
from arcflare.job_controller.bootstrap import bootstrap
from arcflare.job_controller.settings import JobControllerSettings
from jc_fakes import ADMINS, CA, FakeFlareAdmin

from tests.support.signing import as_provisioner


def admin_kit(folder: Path) -> Path:
    (folder / "startup").mkdir(parents=True)
    (folder / "startup" / "fed_admin.json").write_text("{}")
    (folder / "startup" / "client.key").write_text("ADMIN KEY")
    return folder


@pytest.fixture
def service(tmp_path: Path):
    settings = JobControllerSettings(data_dir=tmp_path / "data")
    svc = bootstrap(settings, watch=False)
    client = Client(settings)
    try:
        yield svc, client
    finally:
        client.close()
        svc.stop()


def provisioned(**kit) -> FederationProvisioned:
    return FederationProvisioned(federation="fed", server_endpoint="localhost:1",
                                 server_kit_ref="folder:kits/" + "0" * 64, admin_name="a@b.org",
                                 sites=["site-1"], ca_fingerprint=CA, admins=ADMINS, **kit)


def test_an_admin_kit_path_is_refused_on_arrival(service, tmp_path: Path) -> None:
    svc, client = service

    as_provisioner(svc, provisioned(admin_kit_ref=f"file:{admin_kit(tmp_path / 'kit')}"))
    svc.drain()

    dead = client.bus.peek("events", "job-controller", sub_queue=SubQueue.DEAD_LETTER)
    assert [(m.subject, m.dead_letter_reason) for m in dead] == [
        ("FederationProvisioned", "Forbidden")]
    assert "is no reference into the artifact store" in dead[0].dead_letter_error_description


def test_a_tampered_admin_kit_refuses_the_command_naming_it(service, tmp_path: Path) -> None:
    svc, client = service
    store = svc.dependencies["artifacts"]
    kit = put_kit(store, admin_kit(tmp_path / "kit"))
    store.path("kits", kit.sha256).write_bytes(os.urandom(kit.size))
    as_provisioner(svc, provisioned(admin_kit=kit, admin_kit_ref=kit.locator))
    svc.drain()

    command_id = client.send(RefreshFederationStatus(federation="fed"))
    svc.drain()
    answer = client.wait(command_id, timeout=5)

    assert (answer.type, answer.payload["reason"]) == ("CommandRejected", "invalid")
    assert f"admin kit of fed: artifact {kit.locator}: the stored bytes do not match" in \
        answer.payload["detail"]
    assert not list(svc.settings.kit_cache_dir.rglob("client.key"))


def test_the_admin_kit_is_fetched_once_into_a_private_cache(service, tmp_path: Path) -> None:
    svc, _ = service
    kit = put_kit(svc.dependencies["artifacts"], admin_kit(tmp_path / "kit"))
    as_provisioner(svc, provisioned(admin_kit=kit, admin_kit_ref=kit.locator))
    svc.drain()

    admin = svc.dependencies["flare_admins"].for_federation("fed")

    key = svc.settings.kit_cache_dir / kit.sha256 / "a@b.org" / "startup" / "client.key"
    assert admin.admin_kit_dir == key.parent.parent
    assert key.read_text() == "ADMIN KEY" and key.stat().st_mode & 0o777 == 0o600
    admin.close()


class Closing(FakeFlareAdmin):
    def __init__(self) -> None:
        super().__init__(["site-1"])
        self.closed = False

    def close(self) -> None:
        self.closed = True


def renewal(kind: str, participant: str, kit=None) -> CertificateRenewed:
    return CertificateRenewed(federation="fed", participant=participant, kind=kind,
                              old_fingerprint=CA, new_fingerprint=":".join(["CD"] * 32),
                              not_after="2027-12-01T00:00:00Z", kit=kit,
                              kit_ref=kit.locator if kit else "azureml:arcflare-kit-fed-server:2")


def test_a_renewed_admin_kit_or_server_key_makes_the_next_call_log_in_afresh(tmp_path: Path):
    # Prepare: a job-controller that has logged in with the admin kit it was told of
    built: list = []

    def factory(record):
        built.append(record)
        return Closing()

    svc = bootstrap(JobControllerSettings(data_dir=tmp_path / "data"), admin_factory=factory,
                    watch=False)
    try:
        artifacts = svc.dependencies["artifacts"]
        first_kit = put_kit(artifacts, admin_kit(tmp_path / "kit-1"))
        as_provisioner(svc, provisioned(admin_kit=first_kit, admin_kit_ref=first_kit.locator))
        svc.drain()
        admins = svc.dependencies["flare_admins"]
        first = admins.for_federation("fed")
        unchanged = admins.for_federation("fed")

        # Execute: the admin's kit is renewed, then the server's certificate (its key)
        (admin_kit(tmp_path / "kit-2") / "startup" / "client.key").write_text("RENEWED KEY")
        renewed_kit = put_kit(artifacts, tmp_path / "kit-2")
        as_provisioner(svc, renewal("admin", "a@b.org", renewed_kit))
        svc.drain()
        second = admins.for_federation("fed")
        as_provisioner(svc, renewal("server", "server"))
        svc.drain()
        third = admins.for_federation("fed")
        in_use = not third.closed
    finally:
        svc.stop()

    # Assert
    assert unchanged is first
    assert first.closed and second is not first and built[1].admin_kit == renewed_kit
    assert second.closed and third is not second and built[2].admin_kit == renewed_kit
    assert in_use
