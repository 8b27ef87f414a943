"""Checks a detached JWS: the signer's chain reaches a trust anchor, every certificate in it is
valid now, the signature covers exactly the envelope and body received, and the issuer may
vouch for that kind of principal.

A chain that passed is cached by the hash of its x5c, so the steady state costs one ECDSA
verification; the cached validity window is checked against the clock on every message.
A message signed in a batch (arcflare.trust.jws) proves its place in the batch's Merkle tree;
the root's signature, once verified, is remembered, so the rest of the batch costs hashing.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from arcflare.trust.authority import PROVISIONER
from arcflare.trust.errors import IdentityError, Unauthenticated
from arcflare.trust.files import read_certificates
from arcflare.trust.identity import principal_of
from arcflare.trust.jws import (
    ALG,
    BATCH_TYP,
    COORDINATE_BYTES,
    b64url_decode,
    batch_payload,
    canonical,
    decode_proof,
    leaf_hash,
    merkle_root,
    signing_input,
    thumbprint,
)
from arcflare.trust.principals import Principal
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

Clock = Callable[[], datetime]
#: who may have issued a certificate of each kind besides a trust anchor itself
DELEGATED_KINDS = frozenset({"site", "bridge"})
SIGNING_KINDS = frozenset({"person", "service", "site", "bridge"})


def load_anchors(path: Path | str) -> list[x509.Certificate]:
    """The trust anchors of a PEM bundle; IdentityError if the file is missing or empty."""
    anchors = read_certificates(Path(path))
    if not anchors:
        raise IdentityError(f"{path} holds no trust anchor certificate")
    return anchors


@dataclass(frozen=True)
class _Window:
    subject: str
    not_before: datetime
    not_after: datetime

    @classmethod
    def of(cls, certificate: x509.Certificate) -> _Window:
        return cls(certificate.subject.rfc4514_string(), certificate.not_valid_before_utc,
                   certificate.not_valid_after_utc)

    def check(self, now: datetime) -> None:
        if now > self.not_after:
            raise Unauthenticated(f"certificate {self.subject!r} expired at "
                                  f"{self.not_after.isoformat()}")
        if now < self.not_before:
            raise Unauthenticated(f"certificate {self.subject!r} is not valid before "
                                  f"{self.not_before.isoformat()}")


@dataclass(frozen=True)
class _VerifiedChain:
    principal: Principal
    public_key: ec.EllipticCurvePublicKey
    #: leaf first, trust anchor last
    windows: tuple[_Window, ...]

    def check(self, now: datetime) -> None:
        for window in self.windows:
            window.check(now)


class Verifier:
    def __init__(self, anchors: Sequence[x509.Certificate], *, clock: Clock | None = None,
                 cache_size: int = 4096) -> None:
        if not anchors:
            raise ValueError("a verifier needs at least one trust anchor")
        self._store = Store(list(anchors))
        self._clock = clock or (lambda: datetime.now(UTC))
        self._cache: OrderedDict[bytes, _VerifiedChain] = OrderedDict()
        self._by_header: dict[str, tuple[_VerifiedChain, str | None]] = {}
        #: batch signatures already verified: (signing input, signature)
        self._batches: OrderedDict[tuple[bytes, str], None] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def verify(self, token: str, fields: Mapping[str, str | None], body: bytes,
               proof: str | None = None, chain: str | None = None) -> Principal:
        """The principal that signed these envelope fields and this body — alone, or in a batch
        when the message carries an inclusion `proof` — or Unauthenticated naming what failed.
        `chain` is the certificate chain the message carries beside a token whose header names
        the certificate by thumbprint (a header may instead carry the chain itself, `x5c`)."""
        header_b64, signature = _split(token)
        now = self._clock()
        # a signer's protected header is the same on every message it signs: once its chain
        # is verified, the header string itself finds it (no decoding, parsing or hashing)
        known = self._by_header.get(header_b64)
        if known is None:
            header = _header(header_b64)
            known = self._verified_chain(_named_chain(header, chain), now), header.get("typ")
            with self._lock:
                self._by_header[header_b64] = known
                while len(self._by_header) > self._cache_size:
                    self._by_header.pop(next(iter(self._by_header)))
        verified, typ = known
        verified.check(now)
        if proof is None:
            if typ == BATCH_TYP:
                raise Unauthenticated("the signature covers a batch, but the message carries "
                                      "no inclusion proof")
            _check_signature(verified.public_key,
                             signing_input(header_b64, canonical(fields, body)), signature)
        else:
            if typ != BATCH_TYP:
                raise Unauthenticated(f"the message carries an inclusion proof, but its "
                                      f"signature is of type {typ!r}, not a batch's")
            self._check_batch(verified, header_b64, signature, canonical(fields, body), proof)
        return verified.principal

    def _check_batch(self, verified: _VerifiedChain, header_b64: str, signature: str,
                     envelope: bytes, proof: str) -> None:
        try:
            index, size, siblings = decode_proof(proof)
            root = merkle_root(leaf_hash(envelope), index, size, siblings)
        except (ValueError, binascii.Error) as exc:
            raise Unauthenticated(f"malformed inclusion proof: {exc}") from None
        # a different message, or the same one changed, reaches another root: its signing
        # input differs, so only an unchanged member of a verified batch is found here
        key = (signing_input(header_b64, batch_payload(root, size)), signature)
        with self._lock:
            if key in self._batches:
                self._batches.move_to_end(key)
                return
        try:
            _check_signature(verified.public_key, key[0], signature)
        except Unauthenticated:
            raise Unauthenticated("the batch signature does not match: the body or an envelope "
                                  "field was changed after signing, or the inclusion proof is "
                                  "not this message's") from None
        with self._lock:
            self._batches[key] = None
            while len(self._batches) > self._cache_size:
                self._batches.popitem(last=False)

    def verify_chain(self, chain: Sequence[bytes]) -> Principal:
        """The principal of a certificate chain (leaf first, DER) that reaches a trust anchor
        and is valid now — for proofs other than a message signature."""
        now = self._clock()
        verified = self._verified_chain(
            [base64.b64encode(der).decode("ascii") for der in chain], now)
        verified.check(now)
        return verified.principal

    def verify_attached(self, token: str, typ: str) -> tuple[Principal, bytes]:
        """The principal that signed a compact JWS carrying its own payload, and that payload —
        for proofs other than a message signature (an HTTP request's). The header must name
        `typ`, so a token made for one purpose is never taken for another."""
        if not isinstance(token, str) or token.count(".") != 2:
            raise Unauthenticated("malformed token: expected a compact JWS "
                                  "'header.payload.signature'")
        header_b64, payload_b64, signature = token.split(".")
        header = _header(header_b64)
        if header.get("typ") != typ:
            raise Unauthenticated(f"the token is of type {header.get('typ')!r}, not {typ!r}")
        now = self._clock()
        verified = self._verified_chain(_x5c(header), now)
        verified.check(now)
        _check_signature(verified.public_key, f"{header_b64}.{payload_b64}".encode("ascii"),
                         signature)
        try:
            return verified.principal, b64url_decode(payload_b64)
        except (ValueError, binascii.Error):
            raise Unauthenticated("malformed token: the payload is not base64url") from None

    def _verified_chain(self, x5c: list[str], now: datetime) -> _VerifiedChain:
        key = hashlib.sha256("\n".join(x5c).encode("ascii")).digest()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        verified = self._verify_chain(_certificates(x5c), now)
        with self._lock:
            self._cache[key] = verified
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return verified

    def _verify_chain(self, certificates: list[x509.Certificate], now: datetime) -> _VerifiedChain:
        leaf, *intermediates = certificates
        for certificate in certificates:
            _Window.of(certificate).check(now)
        verifier = PolicyBuilder().store(self._store).time(now).build_client_verifier()
        try:
            chain = verifier.verify(leaf, intermediates).chain
        except VerificationError as exc:
            raise Unauthenticated(
                f"the certificate chain of {leaf.subject.rfc4514_string()!r} does not reach a "
                f"trust anchor ({exc})") from None
        try:
            principal = principal_of(leaf)
        except ValueError as exc:
            raise Unauthenticated(f"no ArcFlare principal in the signing certificate: {exc}") \
                from None
        _check_issuer_rule(principal, chain)
        public_key = leaf.public_key()
        if not (isinstance(public_key, ec.EllipticCurvePublicKey)
                and isinstance(public_key.curve, ec.SECP256R1)):
            raise Unauthenticated(f"certificate of {principal.id} holds no P-256 key, "
                                  "so it cannot make ES256 signatures")
        return _VerifiedChain(principal, public_key, tuple(_Window.of(c) for c in chain))


def _check_issuer_rule(principal: Principal, chain: list[x509.Certificate]) -> None:
    """Persons and services come only from a trust anchor; site agents and bridges also from
    the provisioner's issuer, which the provisioner uses to put identities into kits."""
    if principal.kind not in SIGNING_KINDS:
        raise Unauthenticated(f"{principal.id} is a certificate issuer and may not sign messages")
    issuers = chain[1:-1]
    if not issuers:
        return
    names = ", ".join(repr(c.subject.rfc4514_string()) for c in issuers)
    if principal.kind not in DELEGATED_KINDS:
        raise Unauthenticated(f"a {principal.kind} certificate must be issued directly by a trust "
                              f"anchor, but {principal.id}'s was issued by {names}")
    try:
        issuer = principal_of(issuers[0]) if len(issuers) == 1 else None
    except ValueError:
        issuer = None
    if issuer != Principal.issuer(PROVISIONER):
        raise Unauthenticated(f"a {principal.kind} certificate must be issued by a trust anchor or "
                              f"the provisioner's issuer, but {principal.id}'s was issued by {names}")


def _split(token: str) -> tuple[str, str]:
    if not isinstance(token, str):
        raise Unauthenticated("malformed signature: expected a compact JWS string")
    parts = token.split(".")
    if len(parts) != 3 or not parts[0] or not parts[2]:
        raise Unauthenticated("malformed signature: expected a compact detached JWS "
                              "'header..signature'")
    if parts[1]:
        raise Unauthenticated("malformed signature: the JWS carries a payload, but the "
                              "envelope's payload must be detached")
    return parts[0], parts[2]


def _header(header_b64: str) -> dict:
    try:
        header = json.loads(b64url_decode(header_b64))
    except (ValueError, binascii.Error, RecursionError):  # RecursionError: nested too deep
        raise Unauthenticated("malformed signature: the JWS header is not base64url JSON") \
            from None
    if not isinstance(header, dict):
        raise Unauthenticated("malformed signature: the JWS header is not a JSON object")
    if header.get("alg") != ALG:
        raise Unauthenticated(f"unsupported signature algorithm {header.get('alg')!r}: "
                              f"only {ALG} is accepted")
    if "crit" in header or header.get("b64", True) is not True:
        raise Unauthenticated("unsupported JWS header: 'crit' and 'b64' extensions are not "
                              "understood here")
    return header


def _x5c(header: dict) -> list[str]:
    x5c = header.get("x5c")
    # base64 is ASCII: anything else is no certificate (and could not be hashed for the cache)
    if not x5c or not isinstance(x5c, list) or \
            not all(isinstance(c, str) and c and c.isascii() for c in x5c):
        raise Unauthenticated("the JWS header has no x5c certificate chain, so the signer "
                              "cannot be identified")
    return x5c


def _named_chain(header: dict, chain: str | None) -> list[str]:
    """The certificate chain a message signature stands on: in the header (`x5c`), or beside
    the token when the header names its certificate by thumbprint (`x5t#S256`)."""
    if "x5c" in header or "x5t#S256" not in header:
        return _x5c(header)
    if not chain or not isinstance(chain, str):
        raise Unauthenticated("the signature names its certificate by thumbprint, but the "
                              "message carries no signature_chain, so the signer cannot be "
                              "identified")
    x5c = chain.split(",")
    if not all(c and c.isascii() for c in x5c):
        raise Unauthenticated("malformed signature_chain: expected base64 DER certificates, "
                              "leaf first, separated by commas")
    try:
        leaf = base64.b64decode(x5c[0], validate=True)
    except (ValueError, binascii.Error):
        raise Unauthenticated("malformed signature_chain: its first certificate is not base64 "
                              "DER") from None
    if thumbprint(leaf) != header["x5t#S256"]:
        raise Unauthenticated("the certificate in signature_chain is not the one the signature "
                              "names (x5t#S256)")
    return x5c


def _certificates(x5c: list[str]) -> list[x509.Certificate]:
    certificates = []
    for index, encoded in enumerate(x5c):
        try:
            certificates.append(x509.load_der_x509_certificate(
                base64.b64decode(encoded, validate=True)))
        except (ValueError, binascii.Error):
            raise Unauthenticated(f"malformed signature: x5c[{index}] is not a base64 DER "
                                  "certificate") from None
    return certificates


def _check_signature(public_key: ec.EllipticCurvePublicKey, signed: bytes, signature: str) -> None:
    try:
        raw = b64url_decode(signature)
    except (ValueError, binascii.Error):
        raise Unauthenticated("malformed signature: the JWS signature is not base64url") \
            from None
    if len(raw) != 2 * COORDINATE_BYTES:
        raise Unauthenticated(f"malformed signature: an ES256 signature is "
                              f"{2 * COORDINATE_BYTES} bytes, not {len(raw)}")
    r = int.from_bytes(raw[:COORDINATE_BYTES], "big")
    s = int.from_bytes(raw[COORDINATE_BYTES:], "big")
    try:
        public_key.verify(encode_dss_signature(r, s), signed, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise Unauthenticated("the signature does not match: the body or an envelope field "
                              "was changed after signing") from None
