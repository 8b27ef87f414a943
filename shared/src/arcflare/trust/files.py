"""Where keys and certificates live on disk: directories 0700, private keys 0600, every write
atomic, so a crash never leaves half a key and no other user ever reads one."""
from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from arcflare.trust.errors import IdentityError
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
PUBLIC_FILE = 0o644


def private_dir(path: Path) -> Path:
    """mkdir -p where every directory this creates is 0700, and the leaf 0700 whatever existed
    (the one implementation: kits, identities and the data dir all use it)."""
    missing = []
    probe = Path(path)
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        directory.mkdir(mode=PRIVATE_DIR, exist_ok=True)
    tighten(Path(path), PRIVATE_DIR)
    for directory in missing[1:]:
        tighten(directory, PRIVATE_DIR)
    return Path(path)


def tighten(path: Path, mode: int) -> None:
    try:
        os.chmod(path, mode)
    except PermissionError:  # not ours (a volume mounted by someone else): say so, go on
        logging.getLogger("arcflare").warning(
            "cannot make %s private (mode %o): it belongs to another user", path, mode)


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """The file appears whole, with its final mode, or not at all."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    write_atomic(path, pem, PRIVATE_FILE)


def write_certificates(path: Path, certificates: Iterable[x509.Certificate]) -> None:
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)
    write_atomic(path, pem, PUBLIC_FILE)


def read_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """The P-256 key in `path`, or IdentityError naming what is wrong with it."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise IdentityError(f"private key {path} does not exist") from None
    except (ValueError, TypeError) as exc:
        raise IdentityError(f"{path} is not an unencrypted PEM private key ({exc})") from None
    if not (isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)):
        raise IdentityError(f"private key {path} is not an ECDSA P-256 key")
    return key


def read_certificates(path: Path) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle (an empty file is an empty list)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise IdentityError(f"certificate file {path} does not exist") from None
    if not data.strip():
        return []
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise IdentityError(f"{path} is not a PEM certificate bundle ({exc})") from None
