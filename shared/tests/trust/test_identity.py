"""Loading an identity from its files, and the clear errors when they do not belong together."""
from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

import pytest
from arcflare.trust.authority import new_key
from arcflare.trust.errors import IdentityError
from arcflare.trust.files import write_certificates, write_key
from arcflare.trust.identity import Identity, IdentityFiles
from arcflare.trust.principals import Principal
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID


def test_an_identity_loads_with_its_principal_org_and_chain(root, tmp_path):
    # Prepare
    issuer = root.issue_issuer(out_dir=tmp_path / "issuer")

    # Execute
    person = root.issue(Principal.person("lead@hospital-a.org", "hospital_a"),
                        out_dir=tmp_path / "lead").load()

    # Assert
    assert person.principal == Principal.person("lead@hospital-a.org", "hospital_a")
    assert person.principal.org == "hospital_a"
    assert len(person.chain) == 1 and person.chain[0] == person.certificate.public_bytes(
        Encoding.DER)
    assert issuer.load().principal.id == "issuer:provisioner"


def test_a_missing_key_file_is_named(root, tmp_path):
    # Prepare
    files = root.issue(Principal.service("deployer"), out_dir=tmp_path / "deployer")
    files.key.unlink()

    # Execute / Assert
    with pytest.raises(IdentityError, match=f"private key {files.key} does not exist"):
        files.load()


def test_a_missing_directory_is_named(tmp_path):
    # Execute / Assert
    with pytest.raises(IdentityError, match="there is no identity in"):
        IdentityFiles(tmp_path / "nowhere").load()


def test_a_key_from_another_identity_is_refused(root, tmp_path):
    # Prepare
    one = root.issue(Principal.service("deployer"), out_dir=tmp_path / "one")
    other = root.issue(Principal.service("deployer"), out_dir=tmp_path / "other")
    shutil.copy(other.key, one.key)

    # Execute / Assert
    with pytest.raises(IdentityError, match="does not match certificate"):
        Identity.load(one.cert, one.key)


def test_a_chain_that_did_not_issue_the_leaf_is_refused(root, tmp_path):
    # Prepare
    site = root.issue(Principal.site_agent("example", "hospital-a"), out_dir=tmp_path / "site")
    issuer = root.issue_issuer(out_dir=tmp_path / "issuer")
    shutil.copy(issuer.cert, site.chain)

    # Execute / Assert
    with pytest.raises(IdentityError, match="chain of .* is broken"):
        site.load()


def test_a_certificate_without_an_arcflare_principal_is_refused(root, tmp_path):
    # Prepare: a certificate from the same root that names only a DNS host
    key = new_key()
    now = datetime.now(UTC)
    certificate = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "web")]))
                   .issuer_name(root.certificate.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now).not_valid_after(now + timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName("web.example")]),
                                  critical=False)
                   .sign(root.key, hashes.SHA256()))
    write_certificates(tmp_path / "cert.pem", [certificate])
    write_key(tmp_path / "key.pem", key)

    # Execute / Assert
    with pytest.raises(IdentityError, match="carries no ArcFlare principal URIs"):
        Identity.load(tmp_path / "cert.pem", tmp_path / "key.pem")


def test_a_file_that_is_no_certificate_is_named(root, tmp_path):
    # Prepare
    files = root.issue(Principal.service("deployer"), out_dir=tmp_path / "deployer")
    files.cert.write_text("hello\n")

    # Execute / Assert
    with pytest.raises(IdentityError, match="is not a PEM certificate bundle"):
        files.load()
