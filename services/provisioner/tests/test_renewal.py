"""RenewCertificate: a new key and certificate from the federation's CA, in a new kit version."""
from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from arcflare.artifacts import ArtifactMissing
from arcflare.client import Client
from arcflare.contracts.artifacts import ArtifactRef
from arcflare.contracts.commands import CreateFederation, RemoveSite, RenewCertificate
from arcflare.contracts.events import ParticipantRolled
from arcflare.provisioner.flare_ca import FederationCA
from arcflare.trust.kits import kit_identity
from arcflare.trust.local import DEFAULT_OPERATORS, anchors_path, ensure_local_identities
from arcflare.trust.verifier import Verifier, load_anchors
from cryptography import x509

from tests.support.signing import publish, signer_for

from .conftest import ADMIN, federation_spec

CERT = {"client": "client.crt", "server": "server.crt", "admin": "client.crt"}
KEY = {"client": "client.key", "server": "server.key", "admin": "client.key"}


def kit_files(kit: Path) -> dict[str, str]:
    """Every file of a kit by its path in the kit, as a digest of its bytes."""
    return {str(p.relative_to(kit)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(kit.rglob("*")) if p.is_file()}


def store_files(kits_dir: Path) -> dict[str, dict[str, str]]:
    return {kit.name: kit_files(kit) for kit in sorted(kits_dir.iterdir())
            if (kit / "startup").is_dir()}


def private_keys(kit: Path) -> list[bytes]:
    """The key material in a kit: NVFlare's key and the ArcFlare identity's."""
    return [p.read_bytes() for p in kit.rglob("*") if p.is_file() and
            (p.suffix == ".key" or p.name == kit_identity(kit).key.name)]


def in_store(harness, ref: dict) -> bool:
    """Whether the artifact store still holds a kit's blob."""
    try:
        harness.service.dependencies["artifacts"].fetch(
            ArtifactRef.model_validate(ref), harness.settings.data_dir.parent / "probe",
            area="kits", max_bytes=1 << 30)
    except ArtifactMissing:
        return False
    return True


def outbox_expiring(harness) -> list[tuple[dict, str | None, str | None]]:
    with harness.service.state.connect() as db:
        rows = db.execute("SELECT envelope, deliver_at, cancel FROM _outbox ORDER BY seq").fetchall()
    return [(json.loads(env)["payload"], at, cancel) for env, at, cancel in rows
            if json.loads(env)["type"] == "CertificateExpiring"]


@pytest.mark.parametrize(("participant", "kind"), [("site-1", "client"), ("server", "server"),
                                                    (ADMIN, "admin")])
def test_renewal_issues_a_new_key_and_certificate_from_the_same_ca(harness, participant, kind):
    # Prepare
    harness.run(federation_spec(sites=2))
    kits_dir = harness.settings.kits_dir / "demo"
    kit = kits_dir / participant
    before = store_files(kits_dir)
    old_cert = x509.load_pem_x509_certificate((kit / "startup" / CERT[kind]).read_bytes())
    old_keys = private_keys(kit)
    ca_state = FederationCA(harness.settings.ca_dir, "demo").state_file

    # Execute
    outcome = harness.run(RenewCertificate(federation="demo", participant=participant))

    # Assert: the event names both certificates and the kit
    assert outcome.type == "CertificateRenewed", outcome.payload
    renewed = outcome.payload
    new_cert = x509.load_pem_x509_certificate((kit / "startup" / CERT[kind]).read_bytes())
    assert renewed["participant"] == participant and renewed["kind"] == kind
    # ... and the kit announced (in the artifact store) is the new one
    assert renewed["kit_ref"] == renewed["kit"]["locator"]
    assert kit_files(harness.kit(renewed["kit"])) == kit_files(kit)
    assert renewed["new_fingerprint"] != renewed["old_fingerprint"]
    assert datetime.fromisoformat(renewed["not_after"]) == new_cert.not_valid_after_utc
    # ... signed by the CA every other participant trusts, with the same name
    root = x509.load_pem_x509_certificate((kit / "startup" / "rootCA.pem").read_bytes())
    new_cert.verify_directly_issued_by(root)
    assert new_cert.subject == old_cert.subject
    assert new_cert.public_key().public_numbers() != old_cert.public_key().public_numbers()
    # the old private keys are gone from the new kit and from the CA state
    kit_bytes = b"".join(p.read_bytes() for p in kit.rglob("*") if p.is_file())
    assert old_keys and not any(key in kit_bytes for key in old_keys)
    assert not any(key.decode() in ca_state.read_text() for key in old_keys)
    # no other kit changed, not a byte
    after = store_files(kits_dir)
    assert {k: v for k, v in after.items() if k != participant} == \
        {k: v for k, v in before.items() if k != participant}
    assert after[participant] != before[participant]


def test_a_renewed_kit_carries_a_new_arcflare_identity_where_it_had_one(harness):
    harness.run(federation_spec(sites=1))
    verifier = Verifier(load_anchors(anchors_path(harness.settings.data_dir)))
    site = harness.settings.kits_dir / "demo" / "site-1"
    server = harness.settings.kits_dir / "demo" / "server"
    old = {k: kit_identity(k).load().certificate.serial_number for k in (site, server)}

    harness.run(RenewCertificate(federation="demo", participant="site-1"))
    harness.run(RenewCertificate(federation="demo", participant="server"))

    for kit, principal in ((site, "site:demo/site-1"), (server, "bridge:demo")):
        identity = kit_identity(kit).load()
        assert verifier.verify_chain(identity.chain).id == principal
        assert identity.certificate.serial_number != old[kit]
        assert kit_identity(kit).key.stat().st_mode & 0o777 == 0o600


def test_the_previous_version_is_kept_until_the_deployer_rolls_the_site(harness):
    # Prepare
    created = harness.run(federation_spec(sites=1))
    old_blob = harness.caused_by(created)[1].payload["kit"]
    kit = harness.settings.kits_dir / "demo" / "site-1"
    old = kit_files(kit)
    renewed = harness.run(RenewCertificate(federation="demo", participant="site-1")).payload
    previous = harness.settings.kits_dir / "demo" / ".previous" / "site-1"
    assert kit_files(previous) == old
    assert kit_files(harness.kit(old_blob)) == old  # still in the store: it still runs

    # Execute: a roll onto an older certificate leaves it; the roll onto this one drops it
    deployer = signer_for(harness.settings.data_dir, "service:deployer")
    publish(harness.client.bus, deployer, ParticipantRolled(
        federation="demo", participant="site-1", fingerprint=renewed["old_fingerprint"],
        restarted=True))
    harness.service.drain(timeout=10)
    kept = previous.is_dir()
    publish(harness.client.bus, deployer, ParticipantRolled(
        federation="demo", participant="site-1", fingerprint=renewed["new_fingerprint"],
        restarted=True))
    harness.service.drain(timeout=10)

    # Assert
    assert kept
    assert not previous.exists()
    assert kit.is_dir()
    assert not in_store(harness, old_blob)  # the old keys left the artifact store too
    assert in_store(harness, renewed["kit"])


def test_an_admins_previous_kit_goes_at_once(harness):
    harness.run(federation_spec(sites=1))

    harness.run(RenewCertificate(federation="demo", participant=ADMIN))

    assert not (harness.settings.kits_dir / "demo" / ".previous" / ADMIN).exists()


def test_the_old_warning_is_withdrawn_and_the_new_certificate_gets_its_own(harness):
    harness.run(federation_spec(sites=1))

    renewed = harness.run(RenewCertificate(federation="demo", participant="site-1")).payload

    warnings = {p["fingerprint"]: (at, cancel) for p, at, cancel in outbox_expiring(harness)}
    assert warnings[renewed["old_fingerprint"]][1] == "done"  # withdrawn, never sent
    at, cancel = warnings[renewed["new_fingerprint"]]
    assert cancel is None
    assert datetime.fromisoformat(at) == \
        datetime.fromisoformat(renewed["not_after"]) - timedelta(days=30)


def test_the_records_and_a_repeated_create_announce_the_renewed_certificates(harness):
    spec = federation_spec(sites=1)
    harness.run(spec)
    site = harness.run(RenewCertificate(federation="demo", participant="site-1")).payload
    server = harness.run(RenewCertificate(federation="demo", participant="server")).payload
    admin = harness.run(RenewCertificate(federation="demo", participant=ADMIN)).payload

    again = harness.run(spec)

    announced = {e.type: e.payload for e in harness.caused_by(again)}
    assert announced["SiteProvisioned"]["cert_fingerprint"] == site["new_fingerprint"]
    assert announced["FederationProvisioned"]["server_cert_fingerprint"] == \
        server["new_fingerprint"]
    admins = {c["participant"]: c["fingerprint"]
              for c in announced["FederationProvisioned"]["admin_certificates"]}
    assert admins[ADMIN] == admin["new_fingerprint"]


@pytest.mark.parametrize(("participant", "reason", "words"), [
    ("site-9", "not_found", "site-9 is not a participant of demo"),
    ("rootCA", "not_found", "the CA itself is not renewed in place"),
    ("nobody@nowhere.org", "not_found", "an admin's email, or server"),
    ("site-2", "conflict", "site-2 was removed"),
])
def test_renewing_what_has_no_kit_is_rejected(harness, participant, reason, words):
    harness.run(federation_spec(sites=2))
    harness.run(RemoveSite(federation="demo", site="site-2"))

    outcome = harness.run(RenewCertificate(federation="demo", participant=participant))

    assert outcome.type == "CommandRejected"
    assert outcome.payload["reason"] == reason
    assert words in outcome.payload["detail"]
    assert outcome.payload["errors"][0]["field"] == "participant"


def test_renewing_in_an_unknown_federation_is_not_found(harness):
    outcome = harness.run(RenewCertificate(federation="nowhere", participant="site-1"))

    assert outcome.type == "CommandRejected" and outcome.payload["reason"] == "not_found"
    assert outcome.payload["detail"] == "federation nowhere does not exist; create it first"


def test_an_org_admin_renews_only_its_own_organisations_sites(harness):
    # Prepare: hospital1's org_admin, who may renew site-1 only
    org_admin = "it@hospital1.org"
    ensure_local_identities(harness.settings.data_dir,
                            operators=(*DEFAULT_OPERATORS, (org_admin, "hospital1")))
    spec = federation_spec(sites=2).model_dump()
    spec["admins"].append({"email": org_admin, "org": "hospital1", "role": "org_admin"})
    harness.run(CreateFederation.model_validate(spec))
    harness.client = Client(harness.settings, bus=harness.client.bus, issued_by=org_admin)

    # Execute
    outcomes = {p: harness.run(RenewCertificate(federation="demo", participant=p))
                for p in ("site-1", "site-2", "server")}

    # Assert
    assert outcomes["site-1"].type == "CertificateRenewed"
    for other in ("site-2", "server"):
        assert outcomes[other].type == "CommandRejected"
        assert outcomes[other].payload["reason"] == "Forbidden"
    assert "site-2 belongs to hospital2" in outcomes["site-2"].payload["detail"]
    assert "only the certificates of hospital1's sites; server is not a site" in \
        outcomes["server"].payload["detail"]


def test_a_certificate_the_ca_cannot_outlive_says_so(harness):
    # the default CA term (360 days) is NVFlare's certificate term: a renewal ends with it
    harness.run(federation_spec(sites=1))

    renewed = harness.run(RenewCertificate(federation="demo", participant="site-1")).payload

    ca = FederationCA(harness.settings.ca_dir, "demo").root_certificate()
    assert renewed["limited_by_ca"] is True
    assert datetime.fromisoformat(renewed["not_after"]) == ca.not_after
    assert ca.not_after > datetime.now(UTC)
