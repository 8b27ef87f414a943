"""The identity a process signs with and the trust anchors it verifies against, from its
settings (ARCFLARE_IDENTITY_CERT / _KEY / _CHAIN, ARCFLARE_TRUST_ANCHORS) or, when those
are unset, from the local layout in <data_dir>/identity (arcflare.trust.local).

There is no way to run without them: a process that cannot prove who it is, or cannot
check who others are, refuses to start and says what to set.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from arcflare.runtime.logging import get_logger
from arcflare.runtime.settings import Settings
from arcflare.trust import local
from arcflare.trust.errors import IdentityError
from arcflare.trust.identity import Identity, IdentityFiles
from arcflare.trust.jws import Signer
from arcflare.trust.verifier import Verifier, load_anchors

log = get_logger("arcflare.identity")
SETUP_HINT = ("run `arcflare identity init` for a local setup, or set ARCFLARE_IDENTITY_CERT, "
              "ARCFLARE_IDENTITY_KEY and ARCFLARE_TRUST_ANCHORS (see deploy/README.md)")


class MissingIdentity(RuntimeError):
    pass


def load_identity(settings: Settings, default: IdentityFiles) -> Identity:
    """The configured identity, else the one in `default` (a folder of the local layout)."""
    try:
        if settings.identity_cert or settings.identity_key:
            if not (settings.identity_cert and settings.identity_key):
                raise MissingIdentity("ARCFLARE_IDENTITY_CERT and ARCFLARE_IDENTITY_KEY go "
                                      "together: set both")
            chain = settings.identity_chain or _beside(settings.identity_cert)
            return Identity.load(settings.identity_cert, settings.identity_key, chain)
        if not default.exists():
            raise MissingIdentity(f"no identity at {default.directory}: {SETUP_HINT}")
        return default.load()
    except IdentityError as exc:
        raise MissingIdentity(f"{exc}: {SETUP_HINT}") from None


class FollowingSigner(Signer):
    """A signer that follows its identity files: when a renewed kit puts a new identity of the
    same principal there (the deployer's roll of a site), the next message is signed with it,
    without a restart. Looked at no more than every `check_every_s`; files caught half-copied
    or of another principal are passed over, and the identity in use stays."""

    def __init__(self, files: IdentityFiles, check_every_s: float = 30.0) -> None:
        super().__init__(files.load())
        self.files = files
        self.check_every_s = check_every_s
        self._stamp = self._stamp_now()
        self._next_look = time.monotonic() + check_every_s
        self._lock = threading.Lock()

    def sign(self, fields: Mapping[str, str | None], body: bytes) -> str:
        if time.monotonic() >= self._next_look:
            self._follow()
        return super().sign(fields, body)

    def sign_batch(self, items: Sequence[tuple[Mapping[str, str | None], bytes]]
                   ) -> tuple[str, list[tuple[str, str | None]]]:
        if time.monotonic() >= self._next_look:
            self._follow()
        return super().sign_batch(items)

    def _stamp_now(self) -> tuple[int, int] | None:
        try:
            return self.files.cert.stat().st_mtime_ns, self.files.key.stat().st_mtime_ns
        except OSError:
            return None

    def _follow(self) -> None:
        with self._lock:
            self._next_look = time.monotonic() + self.check_every_s
            stamp = self._stamp_now()
            if stamp is None or stamp == self._stamp:
                return
            try:
                renewed = self.files.load()
            except IdentityError:
                return  # caught mid-copy: looked at again next time
            if renewed.principal != self.principal:
                return
            Signer.__init__(self, renewed)
            self._stamp = stamp
            log.info("signing with a renewed identity", principal=self.principal.id,
                     serial=renewed.certificate.serial_number)


def service_signer(settings: Settings, service: str) -> Signer:
    return Signer(load_identity(settings, local.service_identity_paths(settings.data_dir, service)))


def person_signer(settings: Settings, email: str | None = None) -> Signer:
    """The signer of a person: ARCFLARE_IDENTITY_* when set (a notebook's own certificate),
    else the identity of `email` among those in this data dir (the CLI's `--as`)."""
    if settings.identity_cert or settings.identity_key:
        return Signer(load_identity(settings, IdentityFiles(settings.data_dir)))
    who = (email or settings.issued_by).strip().lower()
    try:
        return Signer(local.person_identity(settings.data_dir, who))
    except IdentityError as exc:
        raise MissingIdentity(str(exc)) from None


def verifier(settings: Settings) -> Verifier:
    path = settings.trust_anchors or local.anchors_path(settings.data_dir)
    if not Path(path).is_file():
        raise MissingIdentity(f"no trust anchors at {path}: {SETUP_HINT}")
    try:
        return Verifier(load_anchors(path))
    except (IdentityError, ValueError) as exc:
        raise MissingIdentity(f"trust anchors {path}: {exc}") from None


def _beside(cert: Path) -> Path | None:
    chain = Path(cert).with_name("chain.pem")
    return chain if chain.is_file() else None
