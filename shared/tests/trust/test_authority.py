"""The trust root and what it issues: certificate profile, file modes, the provisioner's issuer."""
from __future__ import annotations

import stat

import pytest
from arcflare.trust.authority import Issuer, TrustRoot
from arcflare.trust.errors import IdentityError
from arcflare.trust.principals import Principal
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_root_is_a_ten_year_ca_that_signs_certificates(root):
    # Execute
    certificate = root.certificate
    constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value

    # Assert
    assert constraints.critical and constraints.value.ca
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    assert certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert lifetime.days >= 3650


def test_the_root_key_is_0600_in_a_0700_directory(tmp_path):
    # Execute
    root = TrustRoot.create(tmp_path / "fresh" / "trust")

    # Assert
    assert mode(root.directory / "root-key.pem") == 0o600
    assert mode(root.directory) == 0o700
    assert mode(tmp_path / "fresh") == 0o700


def test_ensure_keeps_an_existing_root(root):
    # Execute
    again = TrustRoot.ensure(root.directory)

    # Assert
    assert again.certificate == root.certificate


def test_loading_a_directory_without_a_root_names_the_command_that_makes_one(tmp_path):
    # Execute / Assert
    with pytest.raises(IdentityError, match="no trust root in .*arcflare identity init"):
        TrustRoot.load(tmp_path)


def test_a_leaf_carries_its_principal_and_may_only_sign(root, tmp_path):
    # Execute
    files = root.issue(Principal.person("lead@hospital-a.org", "hospital_a"),
                       out_dir=tmp_path / "lead", validity_days=30)
    leaf = x509.load_pem_x509_certificate(files.cert.read_bytes())
    ext = leaf.extensions

    # Assert
    san = ext.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        "urn:arcflare:person:lead@hospital-a.org"]
    assert ext.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.CLIENT_AUTH])
    usage = ext.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    assert not ext.get_extension_for_class(x509.BasicConstraints).value.ca
    aki = ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == root.certificate.extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier).value.digest
    assert (leaf.not_valid_after_utc - leaf.not_valid_before_utc).days == 30
    assert files.chain.read_bytes() == b""


def test_issued_files_are_private(root, tmp_path):
    # Execute
    files = root.issue(Principal.service("deployer"), out_dir=tmp_path / "a" / "deployer")

    # Assert
    assert mode(files.key) == 0o600
    assert mode(files.directory) == 0o700
    assert mode(tmp_path / "a") == 0o700


def test_the_provisioner_issuer_is_a_ca_that_cannot_delegate(root, tmp_path):
    # Execute
    files = root.issue_issuer("provisioner", out_dir=tmp_path / "issuer")
    certificate = x509.load_pem_x509_certificate(files.cert.read_bytes())

    # Assert
    constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca and constraints.path_length == 0
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        "urn:arcflare:issuer:provisioner"]
    assert mode(files.key) == 0o600


def test_the_issuer_issues_a_site_agent_with_itself_in_the_chain(root, tmp_path):
    # Prepare
    issuer = Issuer.load(root.issue_issuer(out_dir=tmp_path / "issuer").directory)

    # Execute
    identity = issuer.issue(Principal.site_agent("example", "hospital-a"),
                            out_dir=tmp_path / "site").load()

    # Assert
    assert identity.principal.id == "site:example/hospital-a"
    assert identity.intermediates == (issuer.certificate,)


@pytest.mark.parametrize("principal", [
    Principal.person("lead@hospital-a.org", "hospital_a"), Principal.service("deployer")],
    ids=["person", "service"])
def test_the_issuer_refuses_persons_and_services(root, tmp_path, principal):
    # Prepare
    issuer = Issuer.load(root.issue_issuer(out_dir=tmp_path / "issuer").directory)

    # Execute / Assert
    with pytest.raises(ValueError, match=f"may issue only bridge, site identities, not a "
                                         f"{principal.kind}"):
        issuer.issue(principal, out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_leaf_never_outlives_its_issuer(root, tmp_path):
    # Prepare
    issuer = Issuer.load(root.issue_issuer(out_dir=tmp_path / "issuer",
                                           validity_days=10).directory)

    # Execute
    identity = issuer.issue(Principal.bridge("example"), out_dir=tmp_path / "bridge",
                            validity_days=365).load()

    # Assert
    assert identity.certificate.not_valid_after_utc == issuer.certificate.not_valid_after_utc


def test_a_leaf_certificate_is_not_an_issuer(root, tmp_path):
    # Prepare
    files = root.issue(Principal.service("deployer"), out_dir=tmp_path / "deployer")

    # Execute / Assert
    with pytest.raises(IdentityError, match="is not a CA certificate"):
        Issuer.load(files.directory)
