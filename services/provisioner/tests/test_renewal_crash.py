"""A provisioner killed between putting a renewed kit in place and recording it."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from arcflare.bus.sqlite import SqliteBus
from arcflare.client import Client
from arcflare.contracts.commands import RenewCertificate
from arcflare.provisioner import tables
from arcflare.provisioner.bootstrap import bootstrap
from arcflare.provisioner.certificates import read_facts

from tests.support.topology import short_lock_topology

from .conftest import federation_spec, make_settings
from .provisioner_child import DIED_AFTER_KIT

pytestmark = [pytest.mark.chaos]
CHILD = Path(__file__).with_name("provisioner_child.py")


def short_lock_bus(settings) -> SqliteBus:
    return SqliteBus(settings.data_dir / "bus.db", topology=short_lock_topology())


def in_place(kits: Path, name: str) -> str:
    return read_facts(kits / name / "startup" / "client.crt").fingerprint


def on_record(service, name: str) -> str:
    with service.state.connect() as db:
        return tables.site(db, "demo", name).cert_fingerprint


def test_a_crash_after_the_new_kit_leaves_one_consistent_version_after_restart(tmp_path):
    # Prepare: a federation, and a renewal taken by a provisioner that dies mid-way
    settings = make_settings(tmp_path / "data")
    client = Client(settings, bus=short_lock_bus(settings))
    service = bootstrap(settings, bus=short_lock_bus(settings))
    created = client.send(federation_spec(sites=2))
    service.drain(timeout=30)
    assert client.wait(created, timeout=5).type == "FederationProvisioned"
    service.stop(timeout=5)
    kits = settings.kits_dir / "demo"
    original = in_place(kits, "site-1")
    command_id = client.send(RenewCertificate(federation="demo", participant="site-1"))
    env = {**os.environ, "ARCFLARE_DATA_DIR": str(settings.data_dir),
           "ARCFLARE_ISSUED_BY": settings.issued_by, "ARCFLARE_LOG_FORMAT": "json"}
    with open(tmp_path / "child.log", "wb") as log:
        child = subprocess.run([sys.executable, str(CHILD)], env=env, stdout=log,
                               stderr=subprocess.STDOUT, timeout=120, check=False)
    assert child.returncode == DIED_AFTER_KIT, (tmp_path / "child.log").read_text()[-2000:]
    crashed_in_place = in_place(kits, "site-1")

    # Execute: the provisioner starts again and the command comes back
    restarted = bootstrap(settings, bus=short_lock_bus(settings))
    settled = in_place(kits, "site-1")
    try:
        deadline = time.monotonic() + 60
        # the lock the dead child held on the command expires within seconds
        while restarted.drain(timeout=10) == 0 and time.monotonic() < deadline:
            time.sleep(0.5)
        renewed = client.wait(command_id, timeout=10)
        published = list(client.follow(types=["CertificateRenewed"], from_start=True,
                                       until_idle=True, timeout=5))
    finally:
        restarted.stop(timeout=5)
        client.close()

    # Assert: the crash left a kit nobody knew of; the restart put the recorded one back
    assert crashed_in_place != original
    assert settled == original and not (kits / ".incoming" / "site-1").exists()
    # ... and the command, handled again, made one version that records and event agree on
    assert renewed.type == "CertificateRenewed"
    assert renewed.payload["old_fingerprint"] == original
    assert in_place(kits, "site-1") == renewed.payload["new_fingerprint"] == \
        on_record(restarted, "site-1")
    assert in_place(kits / ".previous", "site-1") == original
    assert sorted(p.name for p in (kits / ".incoming").iterdir()) == []
    assert [e.causation_id for e in published] == [command_id]
