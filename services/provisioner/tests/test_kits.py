"""Real NVFlare provisioning: kits that verify against their CA, locked down, ready to run."""
from __future__ import annotations

import json
import stat
from pathlib import Path

from arcflare.contracts.commands import AddSite
from arcflare.provisioner.certificates import fingerprint
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding

from .conftest import ADMIN, federation_spec


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def assert_signed_by(cert: x509.Certificate, ca: x509.Certificate) -> None:
    """What `openssl verify -CAfile rootCA.pem` checks: issuer, signature, validity."""
    assert cert.issuer == ca.subject
    ca.public_key().verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                           cert.signature_hash_algorithm)
    assert cert.not_valid_before_utc <= cert.not_valid_after_utc <= ca.not_valid_after_utc


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_every_kit_chains_to_its_root_ca(harness):
    # Prepare / Execute
    outcome = harness.run(federation_spec(sites=3))
    events = harness.caused_by(outcome)

    # Assert: each site's client cert verifies against its kit's rootCA, and all share one CA
    sites = [e.payload for e in events if e.type == "SiteProvisioned"]
    assert [s["site"] for s in sites] == ["site-1", "site-2", "site-3"]
    ca_fingerprints = set()
    for site in sites:
        kit = harness.kit(site["kit"])
        ca = load_cert(kit / "startup" / "rootCA.pem")
        cert = load_cert(kit / "startup" / "client.crt")
        assert_signed_by(cert, ca)
        assert fingerprint(cert) == site["cert_fingerprint"]
        assert cert.subject.rfc4514_string().endswith(f"CN={site['site']}")
        ca_fingerprints.add(fingerprint(ca))
    server_kit = harness.kit(outcome.payload["server_kit"])
    assert_signed_by(load_cert(server_kit / "startup" / "server.crt"),
                     load_cert(server_kit / "startup" / "rootCA.pem"))
    assert ca_fingerprints == {outcome.payload["ca_fingerprint"]}


def test_server_endpoint_is_a_recorded_free_port_on_localhost(harness):
    outcome = harness.run(federation_spec())

    host, port = outcome.payload["server_endpoint"].split(":")
    server = json.loads((harness.kit(outcome.payload["server_kit"]) / "startup"
                         / "fed_server.json").read_text())
    client = json.loads((harness.kit(harness.caused_by(outcome)[1].payload["kit"]) / "startup"
                         / "fed_client.json").read_text())
    assert host == "localhost" and 1024 <= int(port) <= 65535
    assert server["servers"][0]["service"]["target"] == f"localhost:{port}"
    assert client["servers"][0]["service"]["target"] == f"localhost:{port}"


def test_admin_kit_is_the_project_admins(harness):
    outcome = harness.run(federation_spec())

    kit = harness.kit(outcome.payload["admin_kit"])
    admin = json.loads((kit / "startup" / "fed_admin.json").read_text())
    assert outcome.payload["admin_name"] == ADMIN
    assert admin["admin"]["username"] == ADMIN
    assert "project_admin" in load_cert(kit / "startup" / "client.crt").subject.rfc4514_string()


def test_server_resources_name_no_folder_of_the_provisioner_and_allow_the_bridge(harness):
    outcome = harness.run(federation_spec(heart_beat_timeout_s=15))

    resources_file = harness.kit(outcome.payload["server_kit"]) / "local" / "resources.json"
    resources = json.loads(resources_file.read_text())
    job_manager = next(c for c in resources["components"] if c["id"] == "job_manager")
    snapshot_dir = resources["snapshot_persistor"]["args"]["storage"]["args"]["root_dir"]
    # NVFlare's defaults, which the deployer points into the workspace it runs the kit in
    assert job_manager["args"]["uri_root"] == "/tmp/nvflare/jobs-storage"
    assert snapshot_dir == "/tmp/nvflare/snapshot-storage"
    assert str(harness.settings.data_dir) not in resources_file.read_text()
    assert resources["servers"][0]["heart_beat_timeout"] == 15
    assert resources["class_list_enforcement_mode"] == "enforce"
    assert "arcflare." in resources["class_allow_list"]
    assert "nvflare.app_common.workflows.fedavg.FedAvg" in resources["class_allow_list"]


def test_kits_and_ca_state_are_private(harness):
    harness.run(federation_spec())

    data = harness.settings.data_dir
    private = [data / "kits", data / "provisioner" / "ca" / "demo" / "state"]
    for root in private:
        for path in [root, *root.rglob("*")]:
            mode = stat.S_IMODE(path.stat().st_mode)
            if path.is_dir():
                assert mode == 0o700, path
            elif path.suffix == ".key" or path.name == "cert.json":
                assert mode == 0o600, path
            else:
                assert mode & 0o077 == 0, path
    assert list(data.glob("kits/demo/*/startup/*.key"))
    assert (data / "provisioner" / "ca" / "demo" / "state" / "cert.json").is_file()
    assert not list((data / "provisioner" / "ca" / "demo").glob("prod_*"))  # scratch dropped


def test_add_site_signs_one_cert_with_the_same_ca_and_changes_no_existing_file(harness):
    # Prepare
    created = harness.run(federation_spec(sites=2))
    kits = harness.settings.data_dir / "kits" / "demo"
    before = snapshot(kits)
    state = harness.settings.data_dir / "provisioner" / "ca" / "demo" / "state" / "cert.json"
    ca_before = json.loads(state.read_text())

    # Execute
    added = harness.run(AddSite(federation="demo", site="site-3", org="hospital3"))

    # Assert
    after = snapshot(kits)
    assert {k: v for k, v in after.items() if not k.startswith("site-3/")} == before
    kit = harness.kit(added.payload["kit"])
    ca = load_cert(kit / "startup" / "rootCA.pem")
    assert fingerprint(ca) == created.payload["ca_fingerprint"]
    assert_signed_by(load_cert(kit / "startup" / "client.crt"), ca)
    ca_after = json.loads(state.read_text())
    assert ca_after["root_cert"] == ca_before["root_cert"]
    assert ca_after["root_pri_key"] == ca_before["root_pri_key"]
    assert set(ca_after) - set(ca_before) == {"site-3"}  # exactly one new subject signed
    assert all(ca_after[s] == ca_before[s] for s in ca_before)


def test_kits_are_announced_by_reference_never_by_a_path_and_the_same_kit_is_one_blob(harness):
    created = harness.run(federation_spec())
    again = harness.run(federation_spec())  # announced once more, as a repeated command does

    events = [e for e in harness.published() if e.type in ("FederationProvisioned",
                                                           "SiteProvisioned")]
    assert len(events) == 6
    for event in events:
        assert str(harness.settings.data_dir) not in json.dumps(event.payload)
    for key in ("server", "admin"):
        ref = created.payload[f"{key}_kit"]
        assert created.payload[f"{key}_kit_ref"] == ref["locator"]
        assert ref["locator"].startswith("folder:kits/")
        assert again.payload[f"{key}_kit"] == ref  # packed deterministically: the same blob
    kits_area = harness.settings.data_dir / "artifacts" / "kits"
    assert len(list(kits_area.glob("*/*"))) == 4  # server, admin, two sites: stored once each
