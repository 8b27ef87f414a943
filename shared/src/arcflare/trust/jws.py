"""Detached JWS (RFC 7515, compact serialization, payload detached as in its appendix F) over a
message's canonical envelope.

The signed payload is never sent: both sides rebuild it with `canonical` from the strings on the
wire, so the signature travels as "header..signature" in one application property.
"""
from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping

from arcflare.trust.identity import Identity
from arcflare.trust.principals import Principal
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ALG = "ES256"
TYP = "arcflare-envelope+jws"
#: P-256: r and s are 32 bytes each in a JWS signature
COORDINATE_BYTES = 32
SIGNED_FIELDS = ("message_id", "type", "federation", "site", "issued_by", "on_behalf_of",
                 "correlation_id", "causation_id", "occurred_at")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Unpadded base64url (RFC 7515 §2); ValueError on anything else."""
    if "=" in text:
        raise ValueError("base64url in a JWS carries no padding")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def canonical(fields: Mapping[str, str | None], body: bytes) -> bytes:
    """The signed payload: the envelope fields (a field the mapping lacks counts as null) and
    the body's SHA-256, as JSON with sorted keys and no whitespace."""
    signed: dict[str, str | None] = {}
    for name in SIGNED_FIELDS:
        value = fields.get(name)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"envelope field {name} must be signed as the string sent on the "
                             f"wire, not a {type(value).__name__}")
        signed[name] = value
    signed["body_sha256"] = hashlib.sha256(body).hexdigest()
    return json.dumps(signed, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def signing_input(header_b64: str, payload: bytes) -> bytes:
    return f"{header_b64}.{b64url(payload)}".encode("ascii")


def protected_header(identity: Identity, typ: str) -> str:
    """The base64url JWS header naming the algorithm, the token type and the signer's chain."""
    header = {"alg": ALG, "typ": typ,
              "x5c": [base64.b64encode(der).decode("ascii") for der in identity.chain]}
    return b64url(json.dumps(header, separators=(",", ":")).encode("ascii"))


def es256(identity: Identity, data: bytes) -> str:
    """The base64url ES256 signature of `data`: r and s, 32 bytes each (RFC 7518 §3.4)."""
    der = identity.private_key.sign(data, ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return b64url(r.to_bytes(COORDINATE_BYTES, "big") + s.to_bytes(COORDINATE_BYTES, "big"))


class Signer:
    """Signs envelopes as one identity. The header (alg, x5c) is built once."""

    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        self._header = protected_header(identity, TYP)

    @property
    def principal(self) -> Principal:
        return self.identity.principal

    def sign(self, fields: Mapping[str, str | None], body: bytes) -> str:
        """The compact detached JWS: "header..signature"."""
        signature = es256(self.identity, signing_input(self._header, canonical(fields, body)))
        return f"{self._header}..{signature}"
