"""The identities of a stack on one machine, all under <data_dir>/identity/ (0700):

    trust/anchors.pem             the root certificate every verifier trusts
    trust/root-key.pem            the root key (0600; kept here in local mode only)
    persons/<email>/              cert.pem, key.pem (0600), chain.pem
    services/<name>/
    issuer/                       the provisioner's intermediate issuer
    sites/<federation>/<site>/
    bridges/<federation>/

Every call is idempotent: what exists, is issued by this root and is not about to expire is
kept; anything else is (re)issued. Concurrent processes serialise on a lock file.
"""
from __future__ import annotations

import fcntl
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from arcflare.trust.authority import PROVISIONER, TrustRoot
from arcflare.trust.errors import IdentityError
from arcflare.trust.files import private_dir, read_certificates
from arcflare.trust.identity import Identity, IdentityFiles, principal_of
from arcflare.trust.principals import Principal
from cryptography import x509
from cryptography.exceptions import InvalidSignature

SERVICE_NAMES = ("provisioner", "deployer", "job-controller", "metrics-relay", "alerter", "ledger")
DEFAULT_OPERATORS = (("admin@arcflare.local", "arcflare"),)
#: a local identity this close to expiry is reissued rather than kept
RENEW_BEFORE = timedelta(days=7)


def identity_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "identity"


def trust_dir(data_dir: Path) -> Path:
    return identity_dir(data_dir) / "trust"


def anchors_path(data_dir: Path) -> Path:
    return trust_dir(data_dir) / "anchors.pem"


def person_identity_paths(data_dir: Path, email: str) -> IdentityFiles:
    principal = Principal.person(email)
    return IdentityFiles(identity_dir(data_dir) / "persons" / principal.name)


def service_identity_paths(data_dir: Path, name: str) -> IdentityFiles:
    principal = Principal.service(name)
    return IdentityFiles(identity_dir(data_dir) / "services" / principal.name)


def issuer_identity_paths(data_dir: Path) -> IdentityFiles:
    return IdentityFiles(identity_dir(data_dir) / "issuer")


def site_identity_paths(data_dir: Path, federation: str, site: str) -> IdentityFiles:
    principal = Principal.site_agent(federation, site)
    return IdentityFiles(identity_dir(data_dir) / "sites" / principal.federation / principal.site)


def bridge_identity_paths(data_dir: Path, federation: str) -> IdentityFiles:
    principal = Principal.bridge(federation)
    return IdentityFiles(identity_dir(data_dir) / "bridges" / principal.federation)


@dataclass(frozen=True)
class LocalIdentities:
    data_dir: Path
    anchors: Path
    persons: dict[str, IdentityFiles]
    services: dict[str, IdentityFiles]
    issuer: IdentityFiles
    #: what this call created or renewed, e.g. "trust root", "person admin@arcflare.local"
    created: tuple[str, ...] = field(default=())


def ensure_local_identities(
    data_dir: Path, *, services: Iterable[str] = SERVICE_NAMES,
    operators: Iterable[tuple[str, str]] = DEFAULT_OPERATORS, with_issuer: bool = True,
) -> LocalIdentities:
    """The trust root, a person per (email, org) operator, an identity per service and the
    provisioner's issuer, each created only if missing, foreign or about to expire."""
    data_dir = Path(data_dir)
    with _locked(data_dir):
        created: list[str] = []
        root = _ensure_root(data_dir, created)
        persons = {}
        for email, org in operators:
            principal = Principal.person(email, org)
            persons[principal.name] = _ensure(root, principal,
                                              person_identity_paths(data_dir, email), created)
        named = {name: _ensure(root, Principal.service(name),
                               service_identity_paths(data_dir, name), created)
                 for name in services}
        issuer = issuer_identity_paths(data_dir)
        if with_issuer and not _current(issuer, root, Principal.issuer(PROVISIONER)):
            root.issue_issuer(PROVISIONER, out_dir=issuer.directory)
            created.append(Principal.issuer(PROVISIONER).id)
    return LocalIdentities(data_dir, anchors_path(data_dir), persons, named, issuer,
                           tuple(created))


def site_identity(data_dir: Path, federation: str, site: str) -> IdentityFiles:
    """The agent identity of (federation, site), issued from the local root if missing."""
    return _on_demand(data_dir, Principal.site_agent(federation, site),
                      site_identity_paths(data_dir, federation, site))


def bridge_identity(data_dir: Path, federation: str) -> IdentityFiles:
    """The NVFlare bridge identity of a federation, issued from the local root if missing."""
    return _on_demand(data_dir, Principal.bridge(federation),
                      bridge_identity_paths(data_dir, federation))


def identities_for_email(data_dir: Path) -> dict[str, IdentityFiles]:
    """Every person identity present in the data dir, by email."""
    persons = identity_dir(data_dir) / "persons"
    if not persons.is_dir():
        return {}
    return {d.name: IdentityFiles(d) for d in sorted(persons.iterdir())
            if IdentityFiles(d).exists()}


def person_identity(data_dir: Path, email: str) -> Identity:
    """The person identity `email` from the data dir — the only ones `--as` may choose."""
    files = person_identity_paths(data_dir, email)
    if not files.exists():
        present = ", ".join(identities_for_email(data_dir)) or "none"
        raise IdentityError(f"there is no identity for {email} in {identity_dir(data_dir)} "
                            f"(present: {present}); issue one with `arcflare identity issue "
                            "person`")
    return files.load()


def describe(principal: Principal) -> str:
    """How `created` names an identity: "person <email>", or the principal's id."""
    return f"person {principal.id}" if principal.kind == "person" else principal.id


def _on_demand(data_dir: Path, principal: Principal, files: IdentityFiles) -> IdentityFiles:
    with _locked(Path(data_dir)):
        root = _ensure_root(Path(data_dir), [])
        return _ensure(root, principal, files, [])


def _ensure_root(data_dir: Path, created: list[str]) -> TrustRoot:
    if TrustRoot.exists(trust_dir(data_dir)):
        return TrustRoot.load(trust_dir(data_dir))
    created.append("trust root")
    common_name = f"ArcFlare local root ({data_dir.name})"[:64]
    return TrustRoot.create(trust_dir(data_dir), common_name=common_name)


def _ensure(root: TrustRoot, principal: Principal, files: IdentityFiles,
            created: list[str]) -> IdentityFiles:
    if not _current(files, root, principal):
        root.issue(principal, out_dir=files.directory)
        created.append(describe(principal))
    return files


def _current(files: IdentityFiles, root: TrustRoot, principal: Principal) -> bool:
    """Whether the identity in `files` names `principal`, was issued by this root and
    stays valid for a while — a data dir whose root was replaced must not keep old leaves."""
    if not files.exists():
        return False
    try:
        certificate = read_certificates(files.cert)[0]
        certificate.verify_directly_issued_by(root.certificate)
        same = principal_of(certificate) == principal
    except (IdentityError, IndexError, ValueError, TypeError, InvalidSignature):
        return False
    remaining = certificate.not_valid_after_utc - datetime.now(UTC)
    return same and remaining > RENEW_BEFORE and _is_ca(certificate) == (principal.kind == "issuer")


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


@contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    directory = private_dir(identity_dir(data_dir))
    with os.fdopen(os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600), "r+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
