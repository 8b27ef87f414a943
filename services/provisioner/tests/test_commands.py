"""CreateFederation / AddSite / RemoveSite through the running service: events, replays, refusals."""
from __future__ import annotations

import json
import shutil

import pytest
from arcflare.client import Client
from arcflare.contracts.artifacts import ArtifactRef
from arcflare.contracts.commands import AddSite, RemoveSite
from arcflare.contracts.envelope import Envelope
from arcflare.flare.kits import FolderKitStore
from arcflare.provisioner import tables
from arcflare.provisioner.bootstrap import load_issuer
from arcflare.provisioner.flare_ca import FederationCA
from arcflare.provisioner.project import ServerEndpoint
from arcflare.provisioner.provisioning import provision_federation

from tests.support.signing import raw, signer_for

from .conftest import ADMIN, federation_spec


def send_raw(harness, payload: dict, type_: str = "CreateFederation") -> Envelope:
    """A command as a careless sender could put it on the queue, signed, but with the schema
    not checked."""
    federation = payload.get("name")
    message_id = raw(harness.client.bus, "provisioner", json.dumps(payload).encode(),
                     signer=signer_for(harness.settings.data_dir, ADMIN), type_name=type_,
                     federation=federation, session=federation or "none")
    harness.service.drain(timeout=30)
    return harness.client.wait(message_id, timeout=5, command_type=type_)


def test_create_announces_the_federation_then_each_site(harness):
    outcome = harness.run(federation_spec(sites=2, auto_deploy=True))

    events = harness.caused_by(outcome)
    assert [e.type for e in events] == ["FederationProvisioned", "SiteProvisioned",
                                        "SiteProvisioned"]
    federation = outcome.payload
    assert federation["sites"] == ["site-1", "site-2"] and not federation["existing"]
    assert [a["email"] for a in federation["admins"]] == [ADMIN, "lead@hospital.org"]
    assert all(e.payload["deploy"] for e in events[1:])
    assert all(e.payload["org"].startswith("hospital") for e in events[1:])
    # every certificate's expiry is announced, the CA's and the server's included
    assert federation["ca_not_after"] and federation["server_not_after"]
    assert federation["server_cert_fingerprint"] != federation["ca_fingerprint"]


def test_same_spec_again_changes_nothing_and_reannounces(harness):
    first = harness.run(federation_spec())
    kits = harness.settings.data_dir / "kits"
    before = {p: p.read_bytes() for p in kits.rglob("*") if p.is_file()}

    again = harness.run(federation_spec())

    assert again.type == "FederationProvisioned" and again.payload["existing"] is True
    assert {k: v for k, v in again.payload.items() if k != "existing"} == \
        {k: v for k, v in first.payload.items() if k != "existing"}
    assert {p: p.read_bytes() for p in kits.rglob("*") if p.is_file()} == before
    assert all(e.payload["existing"] for e in harness.caused_by(again))


def test_different_spec_for_existing_name_is_a_conflict_naming_the_differences(harness):
    harness.run(federation_spec(sites=2))

    outcome = harness.run(federation_spec(sites=3, cert_validity_days=100))

    assert outcome.type == "CommandRejected" and outcome.payload["reason"] == "conflict"
    fields = {e["field"]: e["problem"] for e in outcome.payload["errors"]}
    assert fields["cert_validity_days"] == "was 360, now 100"
    assert fields["sites"] == "site-3 added"


def test_naming_the_chosen_port_is_the_same_spec(harness):
    first = harness.run(federation_spec())
    port = int(first.payload["server_endpoint"].rsplit(":", 1)[1])

    again = harness.run(federation_spec(server={"port": port}))
    other = harness.run(federation_spec(server={"port": port + 1 if port < 65535 else port - 1}))

    assert again.type == "FederationProvisioned" and again.payload["existing"]
    assert [e["field"] for e in other.payload["errors"]] == ["server.port"]


def test_add_site_twice_is_a_no_op_the_second_time(harness):
    harness.run(federation_spec())
    first = harness.run(AddSite(federation="demo", site="site-9", org="h9", deploy=True))
    kit = harness.kit(first.payload["kit"])
    key = (kit / "startup" / "client.key").read_bytes()

    again = harness.run(AddSite(federation="demo", site="site-9", org="h9"))

    assert again.type == "SiteProvisioned" and again.payload["existing"] is True
    assert again.payload["cert_fingerprint"] == first.payload["cert_fingerprint"]
    assert first.payload["deploy"] is True
    assert (kit / "startup" / "client.key").read_bytes() == key


def test_add_site_with_another_org_for_an_existing_site_is_a_conflict(harness):
    harness.run(federation_spec())

    outcome = harness.run(AddSite(federation="demo", site="site-1", org="elsewhere"))

    assert outcome.payload["reason"] == "conflict"
    assert outcome.payload["errors"][0]["field"] == "org"


def test_add_site_to_unknown_federation_is_not_found(harness):
    outcome = harness.run(AddSite(federation="nowhere", site="site-1", org="h1"))

    assert outcome.payload["reason"] == "not_found"
    assert outcome.payload["errors"][0]["field"] == "federation"


def test_ca_is_never_reminted_and_missing_ca_state_is_refused(harness):
    created = harness.run(federation_spec())
    state = harness.settings.data_dir / "provisioner" / "ca" / "demo" / "state"
    shutil.rmtree(state)

    outcome = harness.run(AddSite(federation="demo", site="site-7", org="h7"))

    assert outcome.payload["reason"] == "conflict"
    assert "CA state" in outcome.payload["detail"]
    assert not state.exists()  # nothing minted in its place
    assert harness.run(federation_spec()).payload["ca_fingerprint"] == \
        created.payload["ca_fingerprint"]


def test_kits_without_ca_state_are_refused_for_a_new_federation(harness, tmp_path):
    harness.run(federation_spec(name="first"))
    data = harness.settings.data_dir
    shutil.copytree(data / "kits" / "first", data / "kits" / "second")

    outcome = harness.run(federation_spec(name="second"))

    assert outcome.payload["reason"] == "conflict"
    assert "CA state is missing" in outcome.payload["detail"]
    assert not (data / "provisioner" / "ca" / "second" / "state").exists()


def test_remove_site_deletes_its_kit_and_is_idempotent(harness):
    created = harness.run(federation_spec())
    site = next(e for e in harness.caused_by(created) if e.payload.get("site") == "site-1")
    kit = ArtifactRef.model_validate(site.payload["kit"])
    artifacts = harness.service.dependencies["artifacts"]
    assert artifacts.exists(kit)

    removed = harness.run(RemoveSite(federation="demo", site="site-1"))
    again = harness.run(RemoveSite(federation="demo", site="site-1"))
    readd = harness.run(AddSite(federation="demo", site="site-1", org="hospital1"))

    assert removed.type == again.type == "SiteRemoved"
    assert not artifacts.exists(kit)  # its keys are gone from the artifact store
    assert FolderKitStore(harness.settings.kits_dir).ref("demo", "site-1") is None
    assert readd.payload["reason"] == "conflict"  # its old certificate cannot be revoked
    assert harness.run(federation_spec()).payload["sites"] == ["site-2"]


def test_remove_unknown_site_is_not_found(harness):
    harness.run(federation_spec())

    outcome = harness.run(RemoveSite(federation="demo", site="ghost"))

    assert outcome.payload["reason"] == "not_found"
    assert outcome.payload["errors"][0]["field"] == "site"


def test_only_a_project_admin_provisions(harness):
    harness.run(federation_spec())
    harness.client = Client(harness.settings, bus=harness.client.bus, issued_by="lead@hospital.org")

    outcome = harness.run(AddSite(federation="demo", site="site-5", org="h5"))

    assert outcome.payload["reason"] == "Forbidden"
    assert outcome.payload["proven_by"] == "lead@hospital.org"


def spec_payload(**changes) -> dict:
    payload = federation_spec().model_dump(mode="json")
    for path, value in changes.items():
        target = payload
        *parents, last = path.split("__")
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[last] = value
    return payload


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"sites__0__name": "site 1"}, "sites.0.name"),
        ({"sites__1__org": "org-with-dash"}, "sites.1.org"),
        ({"server__host": "bad_host!"}, "server.host"),
        ({"server__port": 80}, "server.port"),
        ({"admins__0__role": "superuser"}, "admins.0.role"),
        ({"admins__1__email": "not-an-email"}, "admins.1.email"),
        ({"cert_validity_days": 0}, "cert_validity_days"),
        ({"sites__1__name": "site-1"}, "(message)"),
        ({"sites__0__name": "server"}, "sites.0.name"),
        ({"sites__1__name": "localhost"}, "sites.1.name"),
        ({"sites__0__compute": {"backend": "azureml"}}, "sites.0.compute.compute"),
    ],
)
def test_each_bad_spec_is_rejected_naming_the_field(harness, changes, field):
    outcome = send_raw(harness, spec_payload(**changes))

    assert outcome.type == "CommandRejected"
    assert outcome.payload["reason"] == "invalid"
    named = [e["field"] for e in outcome.payload["errors"]]
    assert field in named or any(field in n for n in named), named
    assert not (harness.settings.data_dir / "provisioner" / "ca" / "demo" / "state").exists()


def test_no_key_material_in_any_message_or_log_line(harness, capfd):
    harness.run(federation_spec(sites=3))
    harness.run(AddSite(federation="demo", site="site-4", org="h4"))
    harness.run(RemoveSite(federation="demo", site="site-2"))
    harness.run(federation_spec(sites=1))  # a conflict, with its error text

    with harness.service.state.connect() as db:  # every message, scheduled ones included
        outbox = [row[0] for row in db.execute("SELECT envelope FROM _outbox")]
    output = capfd.readouterr()
    assert len(outbox) >= 10
    assert "federation provisioned" in output.out + output.err  # the log was captured
    for text in [*outbox, output.out, output.err]:
        assert "PRIVATE KEY" not in text
        assert "-----BEGIN" not in text


def test_a_redelivery_after_a_crash_reuses_the_ca_and_certificates_left_behind(harness):
    # Prepare: NVFlare provisioning ran, then the process died before the commit
    spec = federation_spec()
    ca = FederationCA(harness.settings.ca_dir, "demo")
    kits = provision_federation(spec, ServerEndpoint("localhost", 20000), ca,
                                FolderKitStore(harness.settings.kits_dir),
                                load_issuer(harness.settings))
    root = ca.root_certificate().fingerprint
    site_cert = next(k for k in kits if k.name == "site-1").certificate.fingerprint

    # Execute: the command is delivered again
    outcome = harness.run(spec)

    # Assert: provisioned for real now, with the CA and site certificate it had minted
    assert outcome.type == "FederationProvisioned" and not outcome.payload["existing"]
    assert outcome.payload["ca_fingerprint"] == root
    assert harness.caused_by(outcome)[1].payload["cert_fingerprint"] == site_cert


def test_access_names_the_admins_and_the_orgs_of_the_sites_still_in(harness):
    harness.run(federation_spec(sites=3))
    harness.run(RemoveSite(federation="demo", site="site-2"))

    with harness.service.state.connect() as db:
        access = tables.access(db, "demo")
        unknown = tables.access(db, "nowhere")

    assert [(a.email, a.role) for a in access.admins] == \
        [(ADMIN, "project_admin"), ("lead@hospital.org", "lead")]
    assert access.site_orgs == {"site-1": "hospital1", "site-3": "hospital3"}
    assert unknown is None


def test_site_kits_carry_their_agents_identity_and_the_server_kit_its_bridges(harness):
    from arcflare.trust.kits import kit_identity
    from arcflare.trust.local import anchors_path
    from arcflare.trust.verifier import Verifier, load_anchors

    created = harness.run(federation_spec(sites=2))
    events = {(e.type, e.payload.get("site")): e for e in harness.caused_by(created)}
    verifier = Verifier(load_anchors(anchors_path(harness.settings.data_dir)))

    site_files = kit_identity(harness.kit(events[("SiteProvisioned", "site-1")].payload["kit"]))
    server = kit_identity(harness.kit(created.payload["server_kit"])).load()
    admin = kit_identity(harness.kit(created.payload["admin_kit"]))

    assert verifier.verify_chain(site_files.load().chain).id == "site:demo/site-1"
    assert verifier.verify_chain(server.chain).id == "bridge:demo"
    assert not admin.exists()  # persons hold their own identities
    assert site_files.key.stat().st_mode & 0o777 == 0o600
    assert site_files.directory.stat().st_mode & 0o077 == 0
