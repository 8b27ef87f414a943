"""An identity: a principal's certificate, its private key and the intermediates up to the root.

On disk an identity is a directory of cert.pem (the leaf), key.pem (0600) and chain.pem (the
intermediates, empty when the root issued the leaf directly).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from arcflare.trust.errors import IdentityError
from arcflare.trust.files import read_certificates, read_key
from arcflare.trust.principals import Principal, is_arcflare_uri
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CERT_FILE, KEY_FILE, CHAIN_FILE = "cert.pem", "key.pem", "chain.pem"


def principal_of(certificate: x509.Certificate) -> Principal:
    """The principal a certificate names in its urn:arcflare: SAN URI; a person's org comes
    from Subject O. ValueError when there is none, more than one, or it is malformed."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        uris = [u for u in san.value.get_values_for_type(x509.UniformResourceIdentifier)
                if is_arcflare_uri(u)]
    except x509.ExtensionNotFound:
        uris = []
    if len(uris) != 1:
        found = "no" if not uris else f"{len(uris)}"
        raise ValueError(f"certificate {certificate.subject.rfc4514_string()!r} carries {found} "
                         "ArcFlare principal URIs (urn:arcflare:...) where exactly one is needed")
    principal = Principal.from_uri(uris[0])
    if principal.kind == "person":
        orgs = certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        if orgs:
            principal = Principal.person(principal.name, org=str(orgs[0].value))
    return principal


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER, hex."""
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


@dataclass(frozen=True)
class Identity:
    principal: Principal
    private_key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    intermediates: tuple[x509.Certificate, ...] = ()

    @property
    def chain(self) -> tuple[bytes, ...]:
        """The leaf and its intermediates as DER: what a signature's x5c carries."""
        return tuple(c.public_bytes(serialization.Encoding.DER)
                     for c in (self.certificate, *self.intermediates))

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.certificate)

    @classmethod
    def load(cls, cert_path: Path | str, key_path: Path | str,
             chain_path: Path | str | None = None) -> Identity:
        """Read and cross-check an identity's files. IdentityError names the file or the
        mismatch: missing file, key not matching the certificate, chain not issuing the leaf,
        no ArcFlare principal in the certificate."""
        cert_path, key_path = Path(cert_path), Path(key_path)
        certificates = read_certificates(cert_path)
        if not certificates:
            raise IdentityError(f"{cert_path} holds no certificate")
        leaf, *intermediates = certificates
        if chain_path is not None:
            intermediates += read_certificates(Path(chain_path))
        key = read_key(key_path)
        if key.public_key() != leaf.public_key():
            raise IdentityError(f"private key {key_path} does not match certificate {cert_path}")
        _check_links(leaf, intermediates, cert_path)
        try:
            principal = principal_of(leaf)
        except ValueError as exc:
            raise IdentityError(f"{cert_path}: {exc}") from None
        return cls(principal, key, leaf, tuple(intermediates))


def _check_links(leaf: x509.Certificate, intermediates: list[x509.Certificate],
                 where: Path) -> None:
    """Each certificate must be signed by the next one: a chain.pem from another identity
    would otherwise only show up as a refused signature on the far side."""
    for child, parent in zip([leaf, *intermediates], intermediates, strict=False):
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature):
            raise IdentityError(
                f"the chain of {where} is broken: {child.subject.rfc4514_string()!r} was not "
                f"issued by {parent.subject.rfc4514_string()!r}") from None


@dataclass(frozen=True)
class IdentityFiles:
    """Where one identity lives: <directory>/{cert,key,chain}.pem."""

    directory: Path

    @property
    def cert(self) -> Path:
        return self.directory / CERT_FILE

    @property
    def key(self) -> Path:
        return self.directory / KEY_FILE

    @property
    def chain(self) -> Path:
        return self.directory / CHAIN_FILE

    def exists(self) -> bool:
        return self.cert.is_file() and self.key.is_file()

    def load(self) -> Identity:
        if not self.directory.is_dir():
            raise IdentityError(f"there is no identity in {self.directory} (no such directory)")
        return Identity.load(self.cert, self.key, self.chain if self.chain.exists() else None)
