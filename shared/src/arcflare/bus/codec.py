"""Envelope ⇄ bus message mapping, the same for every adapter (docs/architecture.md, "Messages").

Sending: every message is signed (arcflare.trust): `issued_by` is stamped with the
signer's principal and a detached JWS over the canonical envelope and the body's hash
travels in the `signature` application property, the signer's certificate chain (which
the JWS header names by thumbprint) in `signature_chain`. Messages sent together may share one
signature over a Merkle tree of their envelopes; each then carries its inclusion proof in
`signature_proof` (docs/decisions/0011).

Receiving is in three steps so that nothing is parsed before it is bounded and nothing
is believed before it is proven: `wire_of` reads the routing properties (bounded),
the runtime verifies the signature over them and the raw body, then `envelope_of`
parses the body (size and nesting depth checked first). Decoding failures are permanent:
the consumer dead-letters them with the reason carried by DecodeError.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from arcflare.bus.port import (
    ORIGINAL_MESSAGE_ID,
    MessageTooLarge,
    OutgoingMessage,
    ReceivedMessage,
)
from arcflare.contracts.envelope import MAX_ID_LENGTH, MAX_MESSAGE_BYTES, Envelope
from pydantic import ValidationError

if TYPE_CHECKING:
    from arcflare.trust.jws import Signer

SIGNATURE_PROPERTY = "signature"
PROOF_PROPERTY = "signature_proof"
CHAIN_PROPERTY = "signature_chain"
#: properties that may be longer than MAX_PROPERTY_CHARS: a token, a certificate chain
_LONG_PROPERTIES = frozenset({SIGNATURE_PROPERTY, CHAIN_PROPERTY})
#: set by a dead-letter resubmit: the copy travels under a new message id (so duplicate
#: detection cannot drop it) but is still the original message, signed as such
ORIGINAL_ID_PROPERTY = ORIGINAL_MESSAGE_ID
#: deepest JSON nesting a body may have: checked before parsing (a deep body would blow the
#: parser's or the validator's recursion limit)
MAX_DEPTH = 32
MAX_PROPERTY_CHARS = 1024
MAX_SIGNATURE_CHARS = 16384
_STRUCTURE = re.compile(rb'[\[\]{}"\\]')
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class DecodeError(ValueError):
    """A message that can never be handled; `reason` is the dead-letter reason."""

    def __init__(self, reason: str, description: str) -> None:
        super().__init__(f"{reason}: {description}")
        self.reason = reason
        self.description = description


@dataclass(frozen=True)
class Wire:
    """A received message's envelope fields exactly as they travelled (strings, bounded)."""

    message_id: str  # the original id (a resubmitted copy carries it in a property)
    type: str
    correlation_id: str | None
    properties: dict[str, str]
    signature: str | None
    body: bytes
    proof: str | None = None  # the message's place in a batch signature
    chain: str | None = None  # the signer's certificate chain the token's header names

    def signed_fields(self) -> dict[str, str | None]:
        return signed_fields(self.message_id, self.type, self.correlation_id, self.properties)


def signed_fields(message_id: str, type_name: str, correlation_id: str | None,
                  props: dict[str, str]) -> dict[str, str | None]:
    """The envelope fields the signature covers (arcflare.trust.jws.SIGNED_FIELDS)."""
    return {
        "message_id": message_id, "type": type_name, "correlation_id": correlation_id,
        "federation": props.get("federation"), "site": props.get("site"),
        "issued_by": props.get("issued_by"), "on_behalf_of": props.get("on_behalf_of"),
        "causation_id": props.get("causation_id"), "occurred_at": props.get("occurred_at"),
    }


@dataclass(frozen=True)
class Unsigned:
    """An envelope mapped to the wire, its properties naming the signer as issuer, waiting
    for its signature."""

    envelope: Envelope
    body: bytes
    properties: dict[str, str]

    @property
    def fields(self) -> dict[str, str | None]:
        e = self.envelope
        return signed_fields(e.message_id, e.type, e.correlation_id, self.properties)


def unsigned(envelope: Envelope, signer: Signer) -> Unsigned:
    """The envelope as `signer`'s principal sends it; MessageTooLarge if its body is.
    `issued_by` is stamped on the wire only: the body never holds it."""
    body = envelope.body()
    if len(body) > MAX_MESSAGE_BYTES:
        raise MessageTooLarge(
            f"{envelope.type} payload is {len(body)} bytes; the limit is {MAX_MESSAGE_BYTES}"
        )
    properties = envelope.application_properties()
    properties["issued_by"] = signer.principal.id
    return Unsigned(envelope, body, properties)


def signed(
    items: list[Unsigned],
    *,
    signer: Signer,
    session: bool = False,
    time_to_live: timedelta | None = None,
    scheduled_enqueue_time: datetime | None = None,
) -> list[OutgoingMessage]:
    """The bus messages for envelopes sent together, under one signature."""
    chain, proofs = signer.sign_batch([(item.fields, item.body) for item in items])
    messages = []
    for item, (token, proof) in zip(items, proofs, strict=True):
        props = {**item.properties, SIGNATURE_PROPERTY: token, CHAIN_PROPERTY: chain}
        if proof is not None:
            props[PROOF_PROPERTY] = proof
        messages.append(OutgoingMessage(
            body=item.body,
            message_id=item.envelope.message_id,
            subject=item.envelope.type,
            correlation_id=item.envelope.correlation_id,
            session_id=item.envelope.federation if session else None,
            content_type="application/json",
            application_properties=props,
            time_to_live=time_to_live,
            scheduled_enqueue_time=scheduled_enqueue_time,
        ))
    return messages


def to_outgoing(
    envelope: Envelope,
    *,
    signer: Signer,
    session: bool = False,
    time_to_live: timedelta | None = None,
    scheduled_enqueue_time: datetime | None = None,
) -> OutgoingMessage:
    """The signed bus message for an envelope, issued by the signer's principal."""
    return signed([unsigned(envelope, signer)], signer=signer, session=session,
                  time_to_live=time_to_live, scheduled_enqueue_time=scheduled_enqueue_time)[0]


def to_outgoing_batch(envelopes: list[Envelope], *, signer: Signer,
                      session: bool = False) -> list[OutgoingMessage]:
    """The signed bus messages for envelopes sent together: one signature for all of them."""
    return signed([unsigned(e, signer) for e in envelopes], signer=signer, session=session)


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def is_text(value: str) -> bool:
    """True unless the string holds what no UTF-8 text can (a lone surrogate, which a JSON
    escape can carry): such a value could be neither signed, stored nor sent on."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def wire_of(message: ReceivedMessage) -> Wire:
    """The routing properties of a received message, checked for presence and size."""
    props: dict[str, str] = {}
    for key, value in (message.application_properties or {}).items():
        name, text = _text(key) or "", _text(value) or ""
        limit = MAX_SIGNATURE_CHARS if name in _LONG_PROPERTIES else MAX_PROPERTY_CHARS
        if len(name) > MAX_PROPERTY_CHARS or len(text) > limit:
            raise DecodeError("InvalidEnvelope",
                              f"application property {name[:64]!r} is over {limit} characters")
        if not (is_text(name) and is_text(text)):
            raise DecodeError("InvalidEnvelope",
                              f"application property {name[:64]!r} is not valid Unicode text")
        props[name] = text
    type_name = props.get("type") or _text(message.subject)
    if not type_name:
        raise DecodeError("MissingType", "the message has neither a 'type' property nor a subject")
    message_id = props.get(ORIGINAL_ID_PROPERTY) or message.message_id
    for name, value in (("message id", message_id), ("type", type_name),
                        ("correlation id", message.correlation_id)):
        if value is not None and len(value) > MAX_ID_LENGTH:
            raise DecodeError("InvalidEnvelope",
                              f"the {name} is {len(value)} characters; at most {MAX_ID_LENGTH}")
        if value is not None and not is_text(value):
            raise DecodeError("InvalidEnvelope", f"the {name} is not valid Unicode text")
    if len(message.body) > MAX_MESSAGE_BYTES:
        raise DecodeError("TooLarge", f"the body is {len(message.body)} bytes; "
                                      f"at most {MAX_MESSAGE_BYTES}")
    return Wire(message_id=message_id, type=type_name,
                correlation_id=_text(message.correlation_id), properties=props,
                signature=props.get(SIGNATURE_PROPERTY), body=message.body,
                proof=props.get(PROOF_PROPERTY), chain=props.get(CHAIN_PROPERTY))


def check_depth(body: bytes, limit: int = MAX_DEPTH) -> None:
    """Refuse JSON nested deeper than `limit` without parsing it (strings skipped)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return
    depth, in_string, escaped = 0, False, False
    for match in _STRUCTURE.finditer(body):
        char = match.group()
        if in_string:
            if escaped:
                escaped = False
            elif char == b"\\":
                # an escape consumes the next byte only when it is adjacent
                escaped = body[match.end():match.end() + 1] in (b'"', b"\\")
            elif char == b'"':
                in_string = False
            continue
        if char == b'"':
            in_string = True
        elif char in (b"[", b"{"):
            depth += 1
            if depth > limit:
                raise DecodeError("TooDeep", f"the body nests deeper than {limit} levels")
        elif char in (b"]", b"}"):
            depth -= 1


def envelope_of(wire: Wire, message: ReceivedMessage) -> Envelope:
    """The envelope of a received message. Raises DecodeError for anything malformed."""
    check_depth(wire.body)
    try:
        payload = json.loads(wire.body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DecodeError("InvalidBody", f"the body is not UTF-8 text: {exc}") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise DecodeError("InvalidJson", f"the body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise DecodeError("InvalidJson", "the body must be a JSON object")
    # a \u escape can smuggle in a lone surrogate, which no text (and no event that would
    # echo it, nor the signature of one) can carry: re-checked only when such an escape is there
    if _SURROGATE_ESCAPE.search(wire.body) and not is_text(json.dumps(payload,
                                                                      ensure_ascii=False)):
        raise DecodeError("InvalidBody", "the body escapes a lone surrogate, which is no text")
    props = wire.properties
    try:
        return Envelope(
            message_id=wire.message_id,
            type=wire.type,
            schema=props.get("schema") or "arcflare.v1",
            correlation_id=wire.correlation_id,
            causation_id=props.get("causation_id"),
            federation=props.get("federation"),
            site=props.get("site"),
            issued_by=props.get("issued_by"),
            on_behalf_of=props.get("on_behalf_of"),
            occurred_at=props.get("occurred_at") or message.enqueued_time,
            payload=payload,
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                             for e in exc.errors(include_url=False)[:5])
        raise DecodeError("InvalidEnvelope", problems) from None


def from_received(message: ReceivedMessage) -> Envelope:
    """The envelope of a received message, unverified: for tools that only display (bus
    peek, dead-letter lists). Anything that acts on a message admits it instead
    (arcflare.runtime.admission)."""
    return envelope_of(wire_of(message), message)
