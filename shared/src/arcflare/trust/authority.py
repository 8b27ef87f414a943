"""The operators' trust root and the certificates it issues (ECDSA P-256).

The root issues persons, services, site agents and bridges directly, and one intermediate
issuer — the provisioner's — that may issue site agents and bridges only, so a provisioner can
put an identity into every kit it builds without holding the root key.
"""
from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path

from arcflare.trust.errors import IdentityError
from arcflare.trust.files import (
    private_dir,
    read_certificates,
    read_key,
    write_certificates,
    write_key,
)
from arcflare.trust.identity import IdentityFiles
from arcflare.trust.principals import Principal
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROOT_DAYS = 3650
ISSUER_DAYS = 1825
LEAF_DAYS = 365
#: certificates start a little in the past so a peer whose clock runs behind accepts them
BACKDATE = timedelta(minutes=5)
ROOT_CERT_FILE, ROOT_KEY_FILE = "anchors.pem", "root-key.pem"
PROVISIONER = "provisioner"


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(principal: Principal) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, principal.id)]
    if principal.org:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, principal.org))
    return x509.Name(attributes)


def _ca_extensions(builder: x509.CertificateBuilder, path_length: int | None) -> x509.CertificateBuilder:
    return (builder
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False), critical=True))


def _leaf_extensions(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    return (builder
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False))


class CertificateAuthority:
    """A CA certificate and its key, issuing leaves of the principal kinds it may vouch for."""

    def __init__(self, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey,
                 chain: tuple[x509.Certificate, ...], kinds: Collection[str]) -> None:
        self.certificate = certificate
        self.key = key
        #: what a leaf's chain.pem holds: the CAs between the leaf and the root
        self.chain = chain
        self.kinds = frozenset(kinds)

    def _builder(self, subject: x509.Name, public_key: ec.EllipticCurvePublicKey,
                 days: int, now: datetime | None) -> x509.CertificateBuilder:
        now = now or datetime.now(UTC)
        if days < 1:
            raise ValueError(f"validity must be at least one day, not {days}")
        not_after = min(now + timedelta(days=days), self.certificate.not_valid_after_utc)
        issuer_ski = self.certificate.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier).value
        return (x509.CertificateBuilder()
                .subject_name(subject)
                .issuer_name(self.certificate.subject)
                .public_key(public_key)
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - BACKDATE)
                .not_valid_after(not_after)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key),
                               critical=False)
                .add_extension(x509.AuthorityKeyIdentifier
                               .from_issuer_subject_key_identifier(issuer_ski), critical=False))

    def issue(self, principal: Principal, *, out_dir: Path | str,
              validity_days: int = LEAF_DAYS, now: datetime | None = None) -> IdentityFiles:
        """Write a new key and certificate for `principal` into out_dir (0700): cert.pem,
        key.pem (0600), chain.pem. Replaces an identity already there."""
        if principal.kind not in self.kinds:
            raise ValueError(f"{self.certificate.subject.rfc4514_string()} may issue only "
                             f"{', '.join(sorted(self.kinds))} identities, not a {principal.kind}")
        key = new_key()
        names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(principal.uri)]
        if principal.kind == "person":
            names.append(x509.RFC822Name(principal.name))
        builder = _leaf_extensions(self._builder(_name(principal), key.public_key(),
                                                 validity_days, now))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        certificate = builder.sign(self.key, hashes.SHA256())
        return _write(Path(out_dir), key, certificate, self.chain)


def _write(out_dir: Path, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate,
           chain: tuple[x509.Certificate, ...]) -> IdentityFiles:
    files = IdentityFiles(private_dir(out_dir))
    write_key(files.key, key)
    write_certificates(files.cert, [certificate])
    write_certificates(files.chain, chain)
    return files


class TrustRoot(CertificateAuthority):
    """The self-signed root: <directory>/anchors.pem and <directory>/root-key.pem (0600)."""

    def __init__(self, directory: Path, certificate: x509.Certificate,
                 key: ec.EllipticCurvePrivateKey) -> None:
        super().__init__(certificate, key, (), ("person", "service", "site", "bridge"))
        self.directory = directory

    @property
    def anchors(self) -> Path:
        return self.directory / ROOT_CERT_FILE

    @classmethod
    def exists(cls, directory: Path | str) -> bool:
        return (Path(directory) / ROOT_KEY_FILE).is_file()

    @classmethod
    def create(cls, directory: Path | str, *, common_name: str = "ArcFlare trust root",
               validity_days: int = ROOT_DAYS) -> TrustRoot:
        directory = private_dir(Path(directory))
        key = new_key()
        now = datetime.now(UTC)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        builder = (x509.CertificateBuilder()
                   .subject_name(subject).issuer_name(subject)
                   .public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - BACKDATE)
                   .not_valid_after(now + timedelta(days=validity_days))
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                                  critical=False))
        # path length 1: the root may sign one level of issuers, which may sign only leaves
        certificate = _ca_extensions(builder, path_length=1).sign(key, hashes.SHA256())
        write_key(directory / ROOT_KEY_FILE, key)
        write_certificates(directory / ROOT_CERT_FILE, [certificate])
        return cls(directory, certificate, key)

    @classmethod
    def load(cls, directory: Path | str) -> TrustRoot:
        """The root in `directory`; anchors.pem may hold further anchors beside it."""
        directory = Path(directory)
        key_path = directory / ROOT_KEY_FILE
        if not key_path.is_file():
            raise IdentityError(f"there is no trust root in {directory} ({ROOT_KEY_FILE} is "
                                "missing); create one with `arcflare identity init`")
        key = read_key(key_path)
        for certificate in read_certificates(directory / ROOT_CERT_FILE):
            if certificate.public_key() == key.public_key():
                return cls(directory, certificate, key)
        raise IdentityError(f"no certificate in {directory / ROOT_CERT_FILE} matches "
                            f"the root key {key_path}")

    @classmethod
    def ensure(cls, directory: Path | str, *, common_name: str = "ArcFlare trust root") -> TrustRoot:
        """Load the root in `directory`, creating it first if there is none."""
        if cls.exists(directory):
            return cls.load(directory)
        return cls.create(directory, common_name=common_name)

    def issue_issuer(self, name: str = PROVISIONER, *, out_dir: Path | str,
                     validity_days: int = ISSUER_DAYS, now: datetime | None = None) -> IdentityFiles:
        """An intermediate CA (path length 0) named urn:arcflare:issuer:<name>; verifiers
        accept site and bridge identities from the one named `provisioner`."""
        principal = Principal.issuer(name)
        key = new_key()
        builder = _ca_extensions(self._builder(_name(principal), key.public_key(),
                                               validity_days, now), path_length=0)
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(principal.uri)]),
            critical=False)
        return _write(Path(out_dir), key, builder.sign(self.key, hashes.SHA256()), ())


class Issuer(CertificateAuthority):
    """The provisioner's intermediate: issues site agents and bridges, nothing else."""

    @classmethod
    def load(cls, directory: Path | str) -> Issuer:
        files = IdentityFiles(Path(directory))
        certificates = read_certificates(files.cert)
        if not certificates:
            raise IdentityError(f"{files.cert} holds no certificate")
        key = read_key(files.key)
        certificate = certificates[0]
        if certificate.public_key() != key.public_key():
            raise IdentityError(f"private key {files.key} does not match certificate {files.cert}")
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
        if not constraints.ca:
            raise IdentityError(f"{files.cert} is not a CA certificate")
        return cls(certificate, key, (certificate,), ("site", "bridge"))
