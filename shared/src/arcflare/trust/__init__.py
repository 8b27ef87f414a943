"""Proof of origin for every message: X.509 identities, detached JWS signatures, verification."""
from arcflare.trust.authority import Issuer, TrustRoot
from arcflare.trust.errors import IdentityError, Unauthenticated
from arcflare.trust.identity import Identity, IdentityFiles
from arcflare.trust.jws import SIGNED_FIELDS, Signer, canonical
from arcflare.trust.principals import Principal
from arcflare.trust.verifier import Verifier, load_anchors

__all__ = [
    "SIGNED_FIELDS", "Identity", "IdentityError", "IdentityFiles", "Issuer", "Principal",
    "Signer", "TrustRoot", "Unauthenticated", "Verifier", "canonical", "load_anchors",
]
