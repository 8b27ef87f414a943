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
from arcflare.contracts.events import FederationProvisioned
from arcflare.flare.kit_artifacts import put_kit
from arcflare.job_controller.bootstrap import bootstrap
from arcflare.job_controller.settings import JobControllerSettings
from jc_fakes import ADMINS, CA

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
