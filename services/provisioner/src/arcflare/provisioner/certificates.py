"""What the outside world may know about a certificate: its fingerprint and dates."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes


@dataclass(frozen=True)
class CertificateFacts:
    fingerprint: str  # SHA-256 of the DER, "AA:BB:..."
    not_after: datetime  # UTC
    subject: str


def fingerprint(cert: x509.Certificate) -> str:
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def facts(cert: x509.Certificate) -> CertificateFacts:
    return CertificateFacts(fingerprint(cert), cert.not_valid_after_utc, cert.subject.rfc4514_string())


def read_facts(pem_file: Path) -> CertificateFacts:
    return facts(x509.load_pem_x509_certificate(pem_file.read_bytes()))
