"""No message makes the deployer run a folder of someone's choosing: a kit is only ever an
artifact of its own store's kits area, fetched and verified before it runs. A path, a
package a person uploaded, another store's reference — refused before anything is recorded,
whoever signed the event; a kit whose stored bytes do not match their hash fails its
deployment naming the reference. Nothing runs in any of these cases."""
from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from arcflare.artifacts.folder import FolderArtifactStore
from arcflare.artifacts.packing import pack_folder_bytes
from arcflare.bus.port import SubQueue
from arcflare.contracts.artifacts import JOB_PACKAGE, STARTUP_KIT, ArtifactRef
from arcflare.contracts.commands import AdminSpec
from arcflare.contracts.events import FederationProvisioned, SiteProvisioned
from arcflare.deployer.bootstrap import bootstrap
from arcflare.flare.kit_artifacts import put_kit
from dep_kits import ADMIN
from dep_service import settings

from tests.support.signing import publish, signer_for

FED = "fedevil"
FINGERPRINT = ":".join(["AB"] * 32)


def evil_kit(root: Path, marker: Path) -> Path:
    """A folder shaped like a client kit whose start script would leave a marker."""
    startup = root / "startup"
    startup.mkdir(parents=True)
    (startup / "sub_start.sh").write_text(f"#!/bin/sh\n# --once\ntouch {marker}\n")
    (startup / "sub_start.sh").chmod(0o755)
    (startup / "fed_client.json").write_text('{"client": {}}')
    return root


def federation(store: FolderArtifactStore, tmp_path: Path) -> FederationProvisioned:
    server = put_kit(store, evil_kit(tmp_path / "server-kit", tmp_path / "server-ran"))
    return FederationProvisioned(
        federation=FED, server_endpoint="localhost:1", server_kit=server,
        server_kit_ref=server.locator, admin_kit=server, admin_kit_ref=server.locator,
        admin_name=ADMIN, sites=["site-1"],
        admins=[AdminSpec(email=ADMIN, org="arc", role="project_admin")],
        ca_fingerprint=FINGERPRINT, auto_deploy=False)


def site(kit_ref: str, kit: ArtifactRef | None = None) -> SiteProvisioned:
    return SiteProvisioned(federation=FED, site="site-1", org="arc", kit_ref=kit_ref, kit=kit,
                           cert_fingerprint=FINGERPRINT,
                           not_after=datetime.now(UTC) + timedelta(days=30), deploy=True)


@pytest.fixture
def deployer(tmp_path: Path, data_dir: Path):
    s = settings(data_dir)
    svc = bootstrap(s)
    store = svc.dependencies["artifacts"]
    publish(svc.bus, signer_for(data_dir, "service:provisioner"), federation(store, tmp_path),
            on_behalf_of=ADMIN)
    try:
        yield svc, store
    finally:
        svc.stop(timeout=5)


def refused(svc, sender: str, event: SiteProvisioned) -> str:
    publish(svc.bus, signer_for(svc.settings.data_dir, sender), event, on_behalf_of=ADMIN)
    svc.drain(timeout=10)
    time.sleep(0.5)
    dead = svc.bus.peek("events", "deployer", sub_queue=SubQueue.DEAD_LETTER)
    assert [(m.subject, m.dead_letter_reason) for m in dead] == [("SiteProvisioned", "Forbidden")]
    with svc.state.connect() as db:
        assert db.execute("SELECT COUNT(*) FROM sites WHERE federation = ?",
                          (FED,)).fetchone()[0] == 0
    return dead[0].dead_letter_error_description


@pytest.mark.parametrize("sender", ["site:fedevil/site-1", "service:provisioner"])
def test_a_path_as_a_kit_never_runs(tmp_path, deployer, sender):
    svc, _ = deployer
    marker = tmp_path / "ran"
    evil = evil_kit(tmp_path / "elsewhere", marker)

    why = refused(svc, sender, site(f"file:{evil}"))

    if sender.startswith("site:"):  # refused at admission: agents do not provision
        assert "comes only from service provisioner" in why
    else:  # the provisioner's word, yet no reference into the store: refused by the deployer
        assert "is no reference into the artifact store" in why
    assert not marker.exists()


def test_a_package_someone_uploaded_is_never_run_as_a_kit(tmp_path, deployer):
    svc, store = deployer
    marker = tmp_path / "ran"
    package = store.put(pack_folder_bytes(evil_kit(tmp_path / "upload", marker)), JOB_PACKAGE,
                        area="packages")

    why = refused(svc, "service:provisioner", site(package.locator, package))

    assert "only 'kits' is read here" in why and package.locator in why
    assert not marker.exists()


def test_another_stores_kit_is_refused(tmp_path, deployer):
    svc, store = deployer
    kit = put_kit(store, evil_kit(tmp_path / "kit", tmp_path / "ran"))
    elsewhere = kit.model_copy(update={"locator": f"azureblob:kits/{kit.sha256}"})

    why = refused(svc, "service:provisioner", site(elsewhere.locator, elsewhere))

    assert "every process of a deployment must share one store" in why


def test_a_tampered_kit_fails_its_deployment_naming_it_and_never_runs(tmp_path, deployer):
    svc, store = deployer
    marker = tmp_path / "ran"
    kit = put_kit(store, evil_kit(tmp_path / "kit", marker))
    blob = store.path("kits", kit.sha256)
    blob.write_bytes(os.urandom(kit.size))  # same size, other bytes

    publish(svc.bus, signer_for(svc.settings.data_dir, "service:provisioner"),
            site(kit.locator, kit), on_behalf_of=ADMIN)
    for _ in range(3):
        svc.drain(timeout=10)

    failed = [m for m in svc.bus.peek("events", "cli", max_messages=100)
              if m.subject == "DeploymentFailed"]
    assert len(failed) == 1
    reason = failed[0].body.decode()
    assert f"kit {kit.locator}" in reason and "do not match their sha256" in reason
    assert not marker.exists()
    assert not list((svc.settings.kit_cache_dir).rglob("sub_start.sh"))


def test_kits_are_unpacked_privately_into_the_deployers_own_cache(tmp_path, deployer):
    svc, store = deployer
    kit = put_kit(store, evil_kit(tmp_path / "kit", tmp_path / "ran"))
    (tmp_path / "kit" / "startup" / "client.key").write_text("KEY")
    kit = put_kit(store, tmp_path / "kit")

    folder = svc.dependencies["kits"].folder(kit, "site-1")

    assert folder == svc.settings.kit_cache_dir / kit.sha256 / "site-1"
    assert (folder / "startup" / "client.key").stat().st_mode & 0o777 == 0o600
    assert (folder / "startup").stat().st_mode & 0o777 == 0o700
    assert STARTUP_KIT == kit.media_type
