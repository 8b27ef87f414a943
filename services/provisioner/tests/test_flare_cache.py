"""AddSite reuses what NVFlare would parse again (template, CA key), never the server's key,
and still builds the kit NVFlare builds for that site."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from arcflare.contracts.commands import AddSite
from arcflare.provisioner import flare_cache
from arcflare.provisioner.certificates import fingerprint
from arcflare.provisioner.flare_ca import FederationCA
from arcflare.provisioner.project import ServerEndpoint, federation_project, one_site_project
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from nvflare.lighter import ctx as flare_ctx
from nvflare.lighter.prov_utils import prepare_builders
from nvflare.lighter.provision import prepare_project
from nvflare.lighter.provisioner import Provisioner

from .conftest import federation_spec
from .test_kits import assert_signed_by, load_cert

KEY_FILES = {"startup/client.crt", "startup/client.key", "startup/rootCA.pem"}


@pytest.fixture(autouse=True)
def empty_cache():
    flare_cache.forget()
    yield
    flare_cache.forget()


@pytest.fixture
def keys_loaded(monkeypatch) -> list[bytes]:
    """Every private key PEM parsed from now on, by NVFlare or by us."""
    loaded: list[bytes] = []
    real = serialization.load_pem_private_key

    def spy(data, *args, **kwargs):
        loaded.append(bytes(data))
        return real(data, *args, **kwargs)

    monkeypatch.setattr(serialization, "load_pem_private_key", spy)
    return loaded


def state_of(harness, federation: str = "demo") -> Path:
    return harness.settings.ca_dir / federation / "state" / "cert.json"


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_add_site_never_loads_the_server_key_and_loads_the_ca_key_once(harness, keys_loaded):
    # Prepare
    created = harness.run(federation_spec(sites=2))
    keys_loaded.clear()

    # Execute
    first = harness.run(AddSite(federation="demo", site="site-3", org="hospital3"))
    second = harness.run(AddSite(federation="demo", site="site-4", org="hospital4"))

    # Assert: the CA key was parsed for the first site only; no other key at all
    state = json.loads(state_of(harness).read_text())
    server_key = state["localhost"]["pri_key"].encode("ascii")
    assert first.type == second.type == "SiteProvisioned"
    assert server_key not in keys_loaded
    assert keys_loaded == [state["root_pri_key"].encode("ascii")]
    for outcome in (first, second):
        kit = harness.kit(outcome.payload["kit"])
        ca = load_cert(kit / "startup" / "rootCA.pem")
        assert fingerprint(ca) == created.payload["ca_fingerprint"]
        assert_signed_by(load_cert(kit / "startup" / "client.crt"), ca)


def test_a_replaced_ca_state_is_loaded_again_and_signs_the_next_site(harness):
    # Prepare: a site signed with demo's CA (now cached), then another CA's state put in its place
    harness.run(federation_spec(name="demo"))
    other = harness.run(federation_spec(name="other"))
    harness.run(AddSite(federation="demo", site="site-3", org="hospital3"))
    shutil.copyfile(state_of(harness, "other"), state_of(harness, "demo"))

    # Execute
    added = harness.run(AddSite(federation="demo", site="site-4", org="hospital4"))

    # Assert
    kit = harness.kit(added.payload["kit"])
    ca = load_cert(kit / "startup" / "rootCA.pem")
    assert fingerprint(ca) == other.payload["ca_fingerprint"]
    assert_signed_by(load_cert(kit / "startup" / "client.crt"), ca)


def test_ca_credentials_follow_the_ca_not_the_file(tmp_path):
    # Prepare: two federations, each with its own CA state
    states = {}
    for name in ("first", "second"):
        ca = FederationCA(tmp_path, name)
        built, _ = ca.provision(federation_project(federation_spec(name=name),
                                                   ServerEndpoint("localhost", 20000)))
        ca.discard(built)
        states[name] = ca.state_file

    # Execute
    first = flare_cache.ca_credentials(states["first"])
    recorded = json.loads(states["first"].read_text())
    recorded["site-9"] = {"cert": "a subject signed since"}  # what NVFlare does on each run
    states["first"].write_text(json.dumps(recorded))
    after_a_run = flare_cache.ca_credentials(states["first"])
    shutil.copyfile(states["second"], states["first"])
    replaced = flare_cache.ca_credentials(states["first"])

    # Assert: the same CA is the same object; another CA is loaded, and its key is its cert's
    assert after_a_run is first
    assert replaced is not first
    second_cert = json.loads(states["second"].read_text())["root_cert"].encode("ascii")
    assert replaced.serialized_cert == second_cert
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    assert replaced.private_key.public_key().public_bytes(serialization.Encoding.PEM, public) == \
        x509.load_pem_x509_certificate(second_cert).public_key().public_bytes(serialization.Encoding.PEM, public)
    assert "PRIVATE" not in repr(replaced)


def test_template_is_parsed_once_per_version_and_each_caller_gets_its_own_copy(
        tmp_path, monkeypatch):
    # Prepare: a copy of NVFlare's templates folder, so its file can change
    templates = tmp_path / "templates"
    shutil.copytree(flare_cache.TEMPLATES_DIR, templates)
    monkeypatch.setattr(flare_cache, "TEMPLATES_DIR", templates)
    parsed: list[str] = []
    real = flare_cache.load_yaml
    monkeypatch.setattr(flare_cache, "load_yaml", lambda f: parsed.append(f) or real(f))

    # Execute
    first = flare_cache.template()
    first["fed_client"] = "changed by a caller"
    second = flare_cache.template()
    master = templates / flare_cache.MASTER_TEMPLATE
    master.write_text(master.read_text() + "\nextra_section: added\n")
    later = master.stat().st_mtime_ns + 1_000_000_000
    os.utime(master, ns=(later, later))
    third = flare_cache.template()

    # Assert
    assert len(parsed) == 2
    assert second["fed_client"] != "changed by a caller"
    assert "extra_section" not in second and third["extra_section"] == "added"


def test_a_new_site_project_builds_the_site_and_nothing_of_the_server(tmp_path):
    # Prepare
    ca = FederationCA(tmp_path, "demo")
    endpoint = ServerEndpoint("localhost", 20000)
    built, _ = ca.provision(federation_project(federation_spec(), endpoint))
    ca.discard(built)

    # Execute
    built, kits = ca.provision_sites(
        one_site_project("demo", endpoint, "consortium", "site-9", "hospital9", 360))

    # Assert
    try:
        assert [(k.participant, k.kind) for k in kits] == [("site-9", "client")]
        assert (kits[0].folder / "startup" / "fed_client.json").is_file()
        assert [p for p in (built / "localhost").rglob("*") if p.is_file()] == []
    finally:
        ca.discard(built)


def test_add_site_does_not_parse_the_template_again(harness, monkeypatch):
    harness.run(federation_spec())
    parsed: list[str] = []
    real = flare_ctx.load_yaml
    monkeypatch.setattr(flare_ctx, "load_yaml", lambda f: parsed.append(f) or real(f))

    added = harness.run(AddSite(federation="demo", site="site-3", org="hospital3"))

    assert added.type == "SiteProvisioned"
    assert parsed == []


def test_a_new_site_kit_is_what_nvflare_builds_for_that_site_apart_from_its_keys(
        harness, tmp_path):
    # Prepare
    created = harness.run(federation_spec(sites=2))
    port = int(created.payload["server_endpoint"].rsplit(":", 1)[1])

    # Execute: AddSite, and NVFlare's own provisioning of the federation with that site in it
    added = harness.run(AddSite(federation="demo", site="site-3", org="hospital3"))
    project = federation_project(federation_spec(sites=3), ServerEndpoint("localhost", port))
    context = Provisioner(str(tmp_path / "plain"), prepare_builders(project)).provision(
        prepare_project(project))

    # Assert: the same files with the same content, but for the certificate, key and CA
    ours = files(harness.kit(added.payload["kit"]))
    nvflares = files(Path(context.get_result_location()) / "site-3")
    ours.pop("local/resources.json")  # ours makes NVFlare's default explicit
    for name in ("cert.pem", "key.pem", "chain.pem"):  # the site agent's ArcFlare identity
        ours.pop(f"startup/arcflare/{name}")
    assert set(ours) == set(nvflares)
    assert KEY_FILES <= set(ours)
    assert {k: v for k, v in ours.items() if k not in KEY_FILES} == \
        {k: v for k, v in nvflares.items() if k not in KEY_FILES}
