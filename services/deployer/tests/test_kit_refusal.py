"""No message makes the deployer run a folder of someone's choosing: a SiteProvisioned whose
kit is outside the deployer's kit store is refused — forged by a site agent (refused at
admission) or even signed by the provisioner itself (refused by the deployer) — and nothing
runs."""
from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from arcflare.bus.port import SubQueue
from arcflare.contracts.commands import AdminSpec
from arcflare.contracts.events import FederationProvisioned, SiteProvisioned
from arcflare.deployer.bootstrap import bootstrap
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


def events(kit_root: Path, evil: Path) -> list:
    federation = FederationProvisioned(
        federation=FED, server_endpoint="localhost:1",
        server_kit_ref=f"file:{kit_root / FED / 'server'}",
        admin_kit_ref=f"file:{kit_root / FED / ADMIN}", admin_name=ADMIN, sites=["site-1"],
        admins=[AdminSpec(email=ADMIN, org="arc", role="project_admin")],
        ca_fingerprint=FINGERPRINT, auto_deploy=True)
    site = SiteProvisioned(federation=FED, site="site-1", org="arc", kit_ref=f"file:{evil}",
                           cert_fingerprint=FINGERPRINT,
                           not_after=datetime.now(UTC) + timedelta(days=30), deploy=True)
    return [federation, site]


@pytest.mark.parametrize("sender", ["site:fedevil/site-1", "service:provisioner"])
def test_a_site_kit_outside_the_store_never_runs(tmp_path, data_dir, sender):
    s = settings(data_dir)
    marker = tmp_path / "ran"
    evil = evil_kit(tmp_path / "elsewhere", marker)
    svc = bootstrap(s)
    federation, site = events(s.kits_root(), evil)
    publish(svc.bus, signer_for(data_dir, "service:provisioner"), federation,
            on_behalf_of=ADMIN)
    publish(svc.bus, signer_for(data_dir, sender), site, on_behalf_of=ADMIN)

    svc.drain(timeout=10)
    time.sleep(0.5)

    dead = svc.bus.peek("events", "deployer", sub_queue=SubQueue.DEAD_LETTER)
    assert [m.subject for m in dead] == ["SiteProvisioned"]
    assert dead[0].dead_letter_reason == "Forbidden"
    why = dead[0].dead_letter_error_description
    if sender.startswith("site:"):  # refused at admission: agents do not provision
        assert "comes only from service provisioner" in why
    else:  # the provisioner's word, yet not its kit store: refused by the deployer
        assert "not site-1's kit in the deployer's kit store" in why
    assert not marker.exists()
    with svc.state.connect() as db:
        assert db.execute("SELECT COUNT(*) FROM sites WHERE federation = ?",
                          (FED,)).fetchone()[0] == 0
    svc.stop(timeout=5)
