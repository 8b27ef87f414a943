"""Detached JWS (RFC 7515, compact serialization, payload detached as in its appendix F) over a
message's canonical envelope.

The signed payload is never sent: both sides rebuild it with `canonical` from the strings on the
wire, so the signature travels as "header..signature" in one application property. The protected
header names the signer's certificate by its SHA-256 thumbprint (`x5t#S256`, RFC 7515 §4.1.8);
the certificate and its chain travel beside the token in a property of their own, base64 once
(inside the header they would be base64 twice: a third of the message's size).

A batch of messages sent together may share one signature (docs/decisions/0011): the JWS then
covers the root of a Merkle tree whose leaves are the messages' canonical envelopes, and each
message carries its own inclusion proof. A message still proves itself alone; the consumer
verifies the root's signature once per batch instead of once per message.
"""
from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from arcflare.trust.identity import Identity
from arcflare.trust.principals import Principal
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ALG = "ES256"
TYP = "arcflare-envelope+jws"
#: the token type of a batch signature: its payload is a Merkle root, never an envelope
BATCH_TYP = "arcflare-envelopes+jws"
#: the most messages one batch signature may cover (a proof is then at most 12 hashes)
MAX_BATCH = 4096
#: P-256: r and s are 32 bytes each in a JWS signature
COORDINATE_BYTES = 32
SIGNED_FIELDS = ("message_id", "type", "federation", "site", "issued_by", "on_behalf_of",
                 "correlation_id", "causation_id", "occurred_at")
#: each key of the canonical form, in sorted order, with its JSON "name": prefix
_CANONICAL_KEYS = tuple((name, f'"{name}":') for name in sorted((*SIGNED_FIELDS, "body_sha256")))
#: the string encoder json.dumps uses with ensure_ascii=False
_json_string = json.encoder.encode_basestring


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Unpadded base64url (RFC 7515 §2); ValueError on anything else."""
    if "=" in text:
        raise ValueError("base64url in a JWS carries no padding")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def canonical(fields: Mapping[str, str | None], body: bytes) -> bytes:
    """The signed payload: the envelope fields (a field the mapping lacks counts as null) and
    the body's SHA-256, as JSON with sorted keys and no whitespace — byte for byte what
    `json.dumps(..., sort_keys=True, separators=(",", ":"), ensure_ascii=False)` writes,
    built directly because every message is signed and verified with it."""
    parts = []
    for name, key in _CANONICAL_KEYS:
        if name == "body_sha256":
            parts.append(f'{key}"{hashlib.sha256(body).hexdigest()}"')
            continue
        value = fields.get(name)
        if value is None:
            parts.append(f"{key}null")
        elif isinstance(value, str):
            parts.append(key + _json_string(value))
        else:
            raise ValueError(f"envelope field {name} must be signed as the string sent on the "
                             f"wire, not a {type(value).__name__}")
    return ("{" + ",".join(parts) + "}").encode("utf-8")


def signing_input(header_b64: str, payload: bytes) -> bytes:
    return f"{header_b64}.{b64url(payload)}".encode("ascii")


def protected_header(identity: Identity, typ: str) -> str:
    """The base64url JWS header naming the algorithm, the token type and the signer's chain."""
    header = {"alg": ALG, "typ": typ,
              "x5c": [base64.b64encode(der).decode("ascii") for der in identity.chain]}
    return b64url(json.dumps(header, separators=(",", ":")).encode("ascii"))


def thumbprint(der: bytes) -> str:
    """A certificate's `x5t#S256`: the base64url SHA-256 of its DER."""
    return b64url(hashlib.sha256(der).digest())


def message_header(identity: Identity, typ: str) -> str:
    """The base64url protected header of a message signature: the algorithm, the token type
    and the thumbprint of the signer's certificate (the chain travels beside the token)."""
    header = {"alg": ALG, "typ": typ, "x5t#S256": thumbprint(identity.chain[0])}
    return b64url(json.dumps(header, separators=(",", ":")).encode("ascii"))


def chain_text(identity: Identity) -> str:
    """The signer's chain as a message carries it: base64 DER, leaf first, comma-separated."""
    return ",".join(base64.b64encode(der).decode("ascii") for der in identity.chain)


def es256(identity: Identity, data: bytes) -> str:
    """The base64url ES256 signature of `data`: r and s, 32 bytes each (RFC 7518 §3.4)."""
    der = identity.private_key.sign(data, ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return b64url(r.to_bytes(COORDINATE_BYTES, "big") + s.to_bytes(COORDINATE_BYTES, "big"))


# --- batches: one signature over a Merkle tree of canonical envelopes --------------------------
# Leaves and inner nodes are hashed with distinct prefixes (as RFC 6962 does), so no inner node
# can pass for a leaf. An odd node at the end of a level is carried up unhashed.
def leaf_hash(canonical_envelope: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + canonical_envelope).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def batch_payload(root: bytes, size: int) -> bytes:
    """What a batch signature signs: the tree's root and how many leaves it has."""
    return f'{{"batch_root":"{root.hex()}","batch_size":{size}}}'.encode("ascii")


def merkle_proofs(leaves: Sequence[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """The root over `leaves` and, for each leaf, its siblings from the bottom up."""
    proofs: list[list[bytes]] = [[] for _ in leaves]
    positions = list(range(len(leaves)))  # where each leaf's ancestor sits in the level
    level = list(leaves)
    while len(level) > 1:
        for leaf, position in enumerate(positions):
            sibling = position ^ 1
            if sibling < len(level):
                proofs[leaf].append(level[sibling])
            positions[leaf] = position // 2
        level = [node_hash(level[i], level[i + 1]) if i + 1 < len(level) else level[i]
                 for i in range(0, len(level), 2)]
    return level[0], proofs


def merkle_root(leaf: bytes, index: int, size: int, siblings: Sequence[bytes]) -> bytes:
    """The root a leaf at `index` of a `size`-leaf tree reaches through `siblings`; ValueError
    if they are not exactly the siblings such a tree has."""
    if not 0 <= index < size <= MAX_BATCH:
        raise ValueError(f"leaf {index} of a batch of {size} is out of range (at most "
                         f"{MAX_BATCH} per batch)")
    remaining = iter(siblings)
    node, width = leaf, size
    while width > 1:
        if index ^ 1 < width:
            sibling = next(remaining, None)
            if sibling is None:
                raise ValueError("the inclusion proof is missing hashes")
            node = node_hash(sibling, node) if index & 1 else node_hash(node, sibling)
        index, width = index // 2, (width + 1) // 2
    if next(remaining, None) is not None:
        raise ValueError("the inclusion proof has more hashes than its tree")
    return node


def encode_proof(index: int, size: int, siblings: Sequence[bytes]) -> str:
    """A message's inclusion proof as it travels: "index.size.siblings" (base64url)."""
    return f"{index}.{size}.{b64url(b''.join(siblings))}"


def decode_proof(proof: str) -> tuple[int, int, list[bytes]]:
    """(index, size, siblings) of a proof; ValueError on anything else."""
    parts = proof.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts[:2]) or \
            max(len(parts[0]), len(parts[1])) > 6:
        raise ValueError("expected 'index.size.siblings'")
    raw = b64url_decode(parts[2])
    if len(raw) % 32:
        raise ValueError("the siblings are not whole SHA-256 hashes")
    return int(parts[0]), int(parts[1]), [raw[i:i + 32] for i in range(0, len(raw), 32)]


@dataclass(frozen=True)
class _Keys:
    """What one identity signs with, built once and swapped whole (a renewed identity must
    never sign under the old certificate's thumbprint, nor travel with the old chain)."""

    identity: Identity
    header: str
    batch_header: str
    chain: str

    @classmethod
    def of(cls, identity: Identity) -> _Keys:
        return cls(identity, message_header(identity, TYP), message_header(identity, BATCH_TYP),
                   chain_text(identity))


class Signer:
    """Signs envelopes as one identity."""

    def __init__(self, identity: Identity) -> None:
        self._keys = _Keys.of(identity)

    @property
    def identity(self) -> Identity:
        return self._keys.identity

    @property
    def principal(self) -> Principal:
        return self._keys.identity.principal

    @property
    def chain(self) -> str:
        """What a message carries beside its token: the certificate its header names."""
        return self._keys.chain

    def sign(self, fields: Mapping[str, str | None], body: bytes) -> str:
        """The compact detached JWS: "header..signature"."""
        return _sign_one(self._keys, fields, body)

    def sign_batch(self, items: Sequence[tuple[Mapping[str, str | None], bytes]]
                   ) -> tuple[str, list[tuple[str, str | None]]]:
        """The chain the tokens' header names (every message carries it), and a (token,
        inclusion proof) for each (envelope fields, body): one signature for all. A single
        message is signed alone, with no proof, exactly as `sign` does."""
        keys = self._keys
        if len(items) == 1:
            fields, body = items[0]
            return keys.chain, [(_sign_one(keys, fields, body), None)]
        if not 1 < len(items) <= MAX_BATCH:
            raise ValueError(f"a batch signs 1 to {MAX_BATCH} messages, not {len(items)}")
        root, proofs = merkle_proofs([leaf_hash(canonical(f, b)) for f, b in items])
        signature = es256(keys.identity, signing_input(keys.batch_header,
                                                       batch_payload(root, len(items))))
        token = f"{keys.batch_header}..{signature}"
        return keys.chain, [(token, encode_proof(i, len(items), siblings))
                            for i, siblings in enumerate(proofs)]


def _sign_one(keys: _Keys, fields: Mapping[str, str | None], body: bytes) -> str:
    signature = es256(keys.identity, signing_input(keys.header, canonical(fields, body)))
    return f"{keys.header}..{signature}"
