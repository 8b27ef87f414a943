"""The local identity layout under <data_dir>/identity: created once, kept, renewed when foreign."""
from __future__ import annotations

import shutil
import stat

import pytest
from arcflare.trust.errors import IdentityError
from arcflare.trust.jws import Signer
from arcflare.trust.local import (
    SERVICE_NAMES,
    anchors_path,
    bridge_identity,
    ensure_local_identities,
    identities_for_email,
    person_identity,
    service_identity_paths,
    site_identity,
)
from arcflare.trust.verifier import Verifier, load_anchors

FIELDS = {"message_id": "m-1", "type": "SiteStatusObserved"}


def fingerprints(data_dir) -> dict[str, bytes]:
    return {str(p.relative_to(data_dir)): p.read_bytes()
            for p in sorted((data_dir / "identity").rglob("*.pem"))}


def test_every_identity_is_created_in_the_layout(tmp_path):
    # Execute
    local = ensure_local_identities(tmp_path)

    # Assert
    identity = tmp_path / "identity"
    assert local.anchors == anchors_path(tmp_path) == identity / "trust" / "anchors.pem"
    assert (identity / "trust" / "root-key.pem").is_file()
    assert set(local.services) == set(SERVICE_NAMES)
    assert local.services["deployer"].directory == identity / "services" / "deployer"
    assert local.persons["admin@arcflare.local"].load().principal.org == "arcflare"
    assert local.issuer.load().principal.id == "issuer:provisioner"
    assert local.created[0] == "trust root" and "issuer:provisioner" in local.created


def test_keys_are_0600_and_directories_0700(tmp_path):
    # Execute
    ensure_local_identities(tmp_path)
    site_identity(tmp_path, "example", "hospital-a")

    # Assert
    paths = list((tmp_path / "identity").rglob("*"))
    keys = [p for p in paths if p.name.endswith("key.pem")]
    assert len(keys) == 1 + 1 + len(SERVICE_NAMES) + 1 + 1
    assert {stat.S_IMODE(p.stat().st_mode) for p in keys} == {0o600}
    dirs = [tmp_path / "identity", *(p for p in paths if p.is_dir())]
    assert {stat.S_IMODE(p.stat().st_mode) for p in dirs} == {0o700}


def test_a_second_call_keeps_every_key(tmp_path):
    # Prepare
    ensure_local_identities(tmp_path)
    before = fingerprints(tmp_path)

    # Execute
    again = ensure_local_identities(tmp_path)

    # Assert
    assert again.created == ()
    assert fingerprints(tmp_path) == before


def test_identities_of_a_replaced_root_are_reissued(tmp_path):
    # Prepare
    ensure_local_identities(tmp_path)
    shutil.rmtree(tmp_path / "identity" / "trust")

    # Execute
    local = ensure_local_identities(tmp_path)

    # Assert: everything verifies against the new root
    verifier = Verifier(load_anchors(local.anchors))
    for files in [*local.services.values(), *local.persons.values()]:
        signer = Signer(files.load())
        token = signer.sign(FIELDS, b"")
        assert verifier.verify(token, FIELDS, b"", chain=signer.chain) == files.load().principal
    assert len(local.created) == 1 + 1 + len(SERVICE_NAMES) + 1


def test_an_identity_for_another_principal_is_replaced(tmp_path):
    # Prepare
    local = ensure_local_identities(tmp_path)
    shutil.copytree(local.services["ledger"].directory, local.services["alerter"].directory,
                    dirs_exist_ok=True)

    # Execute
    again = ensure_local_identities(tmp_path)

    # Assert
    assert again.created == ("service:alerter",)
    assert service_identity_paths(tmp_path, "alerter").load().principal.id == "service:alerter"


def test_site_and_bridge_identities_are_issued_on_demand_and_kept(tmp_path):
    # Prepare
    local = ensure_local_identities(tmp_path)
    verifier = Verifier(load_anchors(local.anchors))

    # Execute
    site = site_identity(tmp_path, "example", "hospital-a")
    first = site.cert.read_bytes()
    again = site_identity(tmp_path, "example", "hospital-a")
    bridge = bridge_identity(tmp_path, "example")

    # Assert
    assert site.directory == tmp_path / "identity" / "sites" / "example" / "hospital-a"
    assert again.cert.read_bytes() == first
    for files in (site, bridge):
        signer = Signer(files.load())
        token = signer.sign(FIELDS, b"")
        assert verifier.verify(token, FIELDS, b"", chain=signer.chain) == files.load().principal
    assert bridge.load().principal.id == "bridge:example"


def test_a_site_name_that_could_leave_the_directory_is_refused(tmp_path):
    # Execute / Assert
    with pytest.raises(ValueError, match="site '..' is not valid"):
        site_identity(tmp_path, "example", "..")
    assert not (tmp_path / "identity" / "sites").exists()


def test_the_persons_present_are_listed_by_email(tmp_path):
    # Prepare
    ensure_local_identities(tmp_path, services=(), operators=[
        ("admin@arcflare.local", "arcflare"), ("Lead@Hospital-A.org", "hospital_a")])

    # Execute
    persons = identities_for_email(tmp_path)

    # Assert
    assert list(persons) == ["admin@arcflare.local", "lead@hospital-a.org"]
    assert person_identity(tmp_path, "LEAD@hospital-a.org").principal.org == "hospital_a"


def test_a_person_not_present_is_refused_naming_those_that_are(tmp_path):
    # Prepare
    ensure_local_identities(tmp_path, services=())

    # Execute / Assert
    with pytest.raises(IdentityError, match=r"no identity for lead@hospital-a.org .*"
                                            r"present: admin@arcflare.local"):
        person_identity(tmp_path, "lead@hospital-a.org")
