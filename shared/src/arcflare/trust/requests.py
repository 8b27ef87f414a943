"""Proof that an HTTP request comes from a principal, on the same identities as the messages.

A request proof is a compact JWS (RFC 7515, ES256, the signer's chain in x5c) whose payload
names the request it was made for — method, target (path and query), Host — and when:

    Authorization: ArcFlare <header>.<payload>.<signature>

The receiver rebuilds method, target and Host from what it received, so a proof is good for
one request to one host, and only briefly: anyone who reads it on the way can replay it for
that same read within the window and nothing else. Off loopback, serve over TLS.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from arcflare.trust.errors import Unauthenticated
from arcflare.trust.identity import Identity
from arcflare.trust.jws import b64url, es256, protected_header
from arcflare.trust.principals import Principal
from arcflare.trust.verifier import Verifier

REQUEST_TYP = "arcflare-request+jws"
#: the HTTP authentication scheme (RFC 9110 §11.1) of a request proof
SCHEME = "ArcFlare"
#: a browser holds no identity: a proof for GET on this path, opened as a link, signs it in
SIGN_IN_PATH = "/console/login"
_CLAIMS = ("method", "target", "host", "iat")


def request_proof(identity: Identity, method: str, target: str, host: str, *,
                  now: float | None = None) -> str:
    """The proof for one request: `target` is the path with its query as sent, `host` the
    Host header (with its port, if the URL has one)."""
    claims = {"method": method.upper(), "target": target, "host": host.lower(),
              "iat": int(time.time() if now is None else now)}
    header = protected_header(identity, REQUEST_TYP)
    payload = b64url(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    return f"{header}.{payload}.{es256(identity, f'{header}.{payload}'.encode('ascii'))}"


def authorization(identity: Identity, method: str, target: str, host: str) -> str:
    """The Authorization header value carrying a fresh proof."""
    return f"{SCHEME} {request_proof(identity, method, target, host)}"


@dataclass(frozen=True)
class RequestVerifier:
    """Checks request proofs: the signer's chain and signature (through `verifier`), then that
    the proof names this very request and was made within `max_age_s` (and not more than
    `clock_skew_s` in the future)."""

    verifier: Verifier
    max_age_s: float = 60.0
    clock_skew_s: float = 30.0
    clock: Callable[[], float] = time.time

    def verify(self, token: str, *, method: str, target: str, host: str,
               max_age_s: float | None = None) -> Principal:
        principal, payload = self.verifier.verify_attached(token, REQUEST_TYP)
        claims = _claims(payload)
        expected = {"method": method.upper(), "target": target, "host": host.lower()}
        for name, value in expected.items():
            if claims[name] != value:
                raise Unauthenticated(f"the proof was made for {name} {claims[name]!r}, "
                                      f"not {value!r}")
        age = self.clock() - claims["iat"]
        window = self.max_age_s if max_age_s is None else max_age_s
        if age > window:
            raise Unauthenticated(f"the proof is {age:.0f} s old; at most {window:.0f} s "
                                  "is accepted (make a new one per request)")
        if age < -self.clock_skew_s:
            raise Unauthenticated(f"the proof is dated {-age:.0f} s in the future; check the "
                                  "signer's clock")
        return principal


def parse_authorization(header: str | None) -> str | None:
    """The proof in an Authorization header of our scheme; None when there is none."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != SCHEME.lower() or not token.strip():
        raise Unauthenticated(f"the Authorization header must read '{SCHEME} <proof>'")
    return token.strip()


def _claims(payload: bytes) -> dict:
    try:
        claims = json.loads(payload)
    except ValueError:
        raise Unauthenticated("malformed proof: the payload is not JSON") from None
    if not isinstance(claims, dict) or set(claims) != set(_CLAIMS):
        raise Unauthenticated(f"malformed proof: the payload must hold exactly "
                              f"{', '.join(_CLAIMS)}")
    if not all(isinstance(claims[k], str) for k in _CLAIMS[:3]) or \
            not isinstance(claims["iat"], int) or isinstance(claims["iat"], bool):
        raise Unauthenticated("malformed proof: method, target and host are strings and "
                              "iat whole seconds since the epoch")
    return claims
