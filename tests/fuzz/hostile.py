"""Hostile messages, described as data and drawn by hypothesis: bodies (arbitrary bytes,
JSON of any shape, depth and size, unicode edge cases, real payloads broken one way),
application properties (missing, extra, over-long, wrong-typed, bytes keys as Service Bus
delivers them), signatures (by a principal allowed to say the message, by one who is not,
by an identity nobody trusts, none, forged, or made void by a property changed after
signing).

A signed hostile message is signed over exactly what its receiver will read (the codec's own
`wire_of`), so its signature holds and the checks behind it are reached.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from arcflare.bus.codec import CHAIN_PROPERTY, SIGNATURE_PROPERTY, DecodeError, wire_of
from arcflare.bus.port import OutgoingMessage, PropertyValue, ReceivedMessage
from arcflare.contracts.base import message_types
from arcflare.contracts.senders import (
    BRIDGE_TYPES,
    EVENT_OWNERS,
    REFUSAL_TYPES,
    SITE_AGENT_TYPES,
)
from arcflare.trust.jws import Signer, b64url
from hypothesis import strategies as st

from tests.fuzz.payloads import ANY_TEXT, JSON_VALUES, mutated, payloads
from tests.support.signing import signer_for, throwaway_signer

FED = "fz"
SITES = ("site-1", "site-2")
OPERATOR = "admin@arcflare.local"
#: every principal a hostile message may be signed by (all trusted in the fuzzed data dir)
PRINCIPALS = (OPERATOR, "stranger@elsewhere.org", "service:provisioner", "service:deployer",
              "service:job-controller", "service:metrics-relay", "service:alerter",
              f"site:{FED}/site-1", f"site:{FED}/site-2", f"bridge:{FED}")
ALLOWED = "allowed"  # the principal the permission table lets say the message
UNTRUSTED = "untrusted"  # a valid signature from a root nobody here trusts
FORGED = "forged"  # a signature property that is no signature at all
SIGNERS = (*PRINCIPALS, UNTRUSTED, FORGED, FORGED, None)
MESSAGE_TYPES = tuple(sorted(message_types()))

EDGE_TEXT = st.sampled_from([
    "", " ", "\x00", "\ud800", "\udfff", "a\ud83d", "\u202e", "\ufeff", "\U0001f4a5" * 40,
    "null", "None", "True", "0", "-1", "1e999", "NaN", "[]", "{}", "../../etc/passwd",
    "x" * 129, "x" * 1025, "é" * 1100, "x" * 16_385,
    "9999-12-31T23:59:59+14:00", "0001-01-01T00:00:00-14:00", "2026-13-45T99:99:99",
])
TEXT = st.one_of(ANY_TEXT, EDGE_TEXT)
#: what a property may hold on the embedded broker (JSON round trip): str, int, float, bool
WIRE_VALUES = st.one_of(TEXT, st.integers(), st.floats(), st.booleans())
#: and what Service Bus may hand over besides: bytes, None
SERVICE_BUS_VALUES = st.one_of(WIRE_VALUES, st.binary(max_size=40), st.none())


@dataclass(frozen=True)
class Hostile:
    """One message as it will be received (before any signature is added)."""

    body: bytes
    subject: str | None
    properties: dict
    message_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    correlation_id: str | None = None
    #: ALLOWED, a principal id, UNTRUSTED, FORGED or None (unsigned)
    signer: str | None = None
    forged: str = ""
    #: properties changed after signing (the signature no longer holds)
    tamper: dict = field(default_factory=dict)

    @property
    def type_name(self) -> str | None:
        value = self.properties.get("type")
        return value if isinstance(value, str) else self.subject

    def received(self, signature: str | None = None, *, tampered: bool = True,
                 delivery_count: int = 1) -> ReceivedMessage:
        props = dict(self.properties)
        if signature is not None:
            props[SIGNATURE_PROPERTY] = signature
        if tampered:
            props.update(self.tamper)
        return ReceivedMessage(
            body=self.body, message_id=self.message_id, subject=self.subject,
            correlation_id=self.correlation_id, session_id=None,
            content_type="application/json", application_properties=props,
            sequence_number=1, delivery_count=delivery_count,
            enqueued_time=datetime.now(UTC), entity_path="fuzz")

    def outgoing(self, signature: str | None, session_id: str | None) -> OutgoingMessage:
        props: dict[str, PropertyValue] = dict(self.properties)
        if signature is not None:
            props[SIGNATURE_PROPERTY] = signature
        props.update(self.tamper)
        return OutgoingMessage(body=self.body, message_id=self.message_id, subject=self.subject,
                               correlation_id=self.correlation_id, session_id=session_id,
                               application_properties=props)


class Signers:
    """The signers of one data dir's principals, made on first use."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._made: dict[str, Signer] = {}

    def get(self, principal: str) -> Signer:
        if principal == UNTRUSTED:
            return throwaway_signer("service:provisioner")
        if principal not in self._made:
            self._made[principal] = signer_for(self.data_dir, principal)
        return self._made[principal]

    def sign(self, hostile: Hostile) -> tuple[Hostile, str | None]:
        """The message claiming its signer as issued_by (unless it claims someone else on
        purpose, and signs that), and the signature property it travels with (None:
        unsigned)."""
        if hostile.signer is None:
            return hostile, None
        if hostile.signer == FORGED:
            return hostile, hostile.forged
        signer = self.get(allowed_author(hostile) if hostile.signer == ALLOWED
                          else hostile.signer)
        claimed = hostile if "issued_by" in hostile.properties else replace(
            hostile, properties={**hostile.properties, "issued_by": signer.principal.id})
        # the certificate chain travels beside the signature, as the codec sends it (a hostile
        # message that names another chain gets it from its tamper)
        claimed = replace(claimed, properties={**claimed.properties,
                                               CHAIN_PROPERTY: signer.chain})
        try:
            wire = wire_of(claimed.received(tampered=False))
            return claimed, signer.sign(wire.signed_fields(), claimed.body)
        except (DecodeError, ValueError):
            # unreadable properties, or text no signature can cover (a lone surrogate): the
            # best a sender can do is sign something else
            return claimed, signer.sign({}, claimed.body)


def allowed_author(hostile: Hostile) -> str:
    """Who the permission table lets say this message (the operator for commands and for
    anything about a federation or site this data dir has no identity for)."""
    type_name = hostile.type_name or ""
    federation, site = hostile.properties.get("federation"), hostile.properties.get("site")
    if type_name in SITE_AGENT_TYPES and federation == FED and site in SITES:
        return f"site:{FED}/{site}"
    if type_name in BRIDGE_TYPES and federation == FED:
        return f"bridge:{FED}"
    if type_name in EVENT_OWNERS:
        return f"service:{EVENT_OWNERS[type_name]}"
    if type_name in REFUSAL_TYPES:
        return "service:provisioner"
    return OPERATOR


# --- bodies --------------------------------------------------------------------------------
def _nested(depth: int, kind: str) -> bytes:
    if kind == "list":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


DEEP = st.builds(_nested, st.one_of(st.integers(30, 40), st.sampled_from([1000, 100_000])),
                 st.sampled_from(["list", "object"]))
#: brackets and escapes inside strings, which a depth check must skip
BRACKETS_IN_STRINGS = st.lists(st.sampled_from(['"[["', '"\\\\"', '"\\"[{"', "[", "]", "{}",
                                                '"\\u005b"']), max_size=60).map(
    lambda parts: ("[" + ",".join(p for p in parts if p not in "[]") + "]").encode())
HUGE = st.sampled_from([
    json.dumps({"x": "y" * 200_000}).encode(),
    json.dumps({"x": "\ud800" * 30_000}).encode(),  # escaped surrogates: valid JSON, bad text
    json.dumps({f"k{i}": i for i in range(15_000)}).encode(),
    b'{"x": "' + "é".encode() * 100_000 + b'"}',
])
INVALID_UTF8 = st.sampled_from([b'{"federation": "\xff\xfe"}', b"\xc3\x28", b'"\xed\xa0\x80"'])
ANY_JSON = JSON_VALUES.map(lambda v: json.dumps(v).encode())


#: bodies that are no payload of any message
HOSTILE_BODIES = st.one_of(
    st.binary(max_size=300), ANY_JSON, DEEP, BRACKETS_IN_STRINGS, HUGE, INVALID_UTF8,
    JSON_VALUES.map(lambda v: json.dumps({"payload": v}, ensure_ascii=True).encode()))


# --- signatures ----------------------------------------------------------------------------
HEADERS = st.one_of(
    ANY_JSON,
    st.sampled_from([b"[" * 5000, b'{"alg":"ES256"}', b'{"alg":"ES256","x5c":"x"}',
                     b'{"alg":"ES256","x5c":[""]}', b'{"alg":"none","x5c":["AA=="]}',
                     b'{"alg":"ES256","crit":["b64"],"x5c":["AA=="]}',
                     b'{"alg":"ES256","typ":"arcflare-envelopes+jws","x5c":["AA=="]}']),
    st.lists(ANY_TEXT, min_size=1, max_size=3).map(
        lambda x5c: json.dumps({"alg": "ES256", "x5c": x5c}).encode()),
)
FORGERIES = st.one_of(
    TEXT,
    st.tuples(HEADERS, st.binary(max_size=80)).map(
        lambda hs: f"{b64url(hs[0])}..{b64url(hs[1])}"),
    st.tuples(HEADERS, TEXT, TEXT).map(lambda hs: f"{b64url(hs[0])}.{hs[1]}.{hs[2]}"),
)


# --- whole messages ------------------------------------------------------------------------
#: what one hostile message may get wrong (a valid message gets none of them wrong)
FLAWS = ("type", "subject", "federation", "site", "occurred_at", "schema", "issued_by",
         "extra_properties", "ids", "body", "payload", "signature", "tamper")


def _about(payload: dict, site: str) -> dict:
    """The payload about the fuzzed federation and site (else the envelope would disagree)."""
    return {**payload, **{k: v for k, v in (("federation", FED), ("site", site))
                          if k in payload}}


@st.composite
def hostile_messages(draw: st.DrawFn, types: tuple[str, ...] = MESSAGE_TYPES, *,
                     values: st.SearchStrategy = WIRE_VALUES, bytes_keys: bool = False,
                     sites: tuple[str, ...] = SITES) -> Hostile:
    """A message of one of `types` with none, one or a few flaws."""
    flaws = draw(st.one_of(st.just(frozenset()),
                           st.frozensets(st.sampled_from(FLAWS), min_size=1, max_size=3)))
    type_name = draw(st.sampled_from(types))
    if "type" in flaws:
        type_name = draw(st.one_of(st.sampled_from(MESSAGE_TYPES), TEXT))
    site = draw(st.sampled_from(sites))
    fields = message_types()[type_name].model_fields if type_name in MESSAGE_TYPES else {}
    props = {"type": type_name, "schema": "arcflare.v1",
             "federation": FED if "federation" in fields else None,
             "site": site if "site" in fields else None,
             "occurred_at": datetime.now(UTC).isoformat()}
    for name in ("federation", "site", "occurred_at", "schema", "issued_by"):
        if name in flaws:
            props[name] = draw(st.one_of(st.none(), values))
    if "extra_properties" in flaws:
        props.update(draw(st.dictionaries(
            st.one_of(TEXT, st.sampled_from(["causation_id", "on_behalf_of", "traceparent",
                                             "original_message_id", "signature",
                                             "signature_proof", "signature_chain"])),
            values, min_size=1, max_size=3)))
    props = {k: v for k, v in props.items() if v is not None}
    if bytes_keys and draw(st.booleans()):  # as Service Bus hands them over
        props = {k.encode("utf-8", "surrogatepass"): v for k, v in props.items()}
    subject = draw(st.one_of(st.none(), TEXT)) if "subject" in flaws else type_name
    if "body" in flaws or type_name not in MESSAGE_TYPES:
        body = draw(HOSTILE_BODIES)
    else:
        payload = draw(mutated(type_name) if "payload" in flaws else payloads(type_name))
        body = json.dumps(_about(payload, site), ensure_ascii=draw(st.booleans())).encode(
            "utf-8", "surrogatepass")
    signer = draw(st.sampled_from(SIGNERS)) if "signature" in flaws else ALLOWED
    tamper = draw(st.dictionaries(st.sampled_from(["federation", "site", "type", "issued_by",
                                                   "occurred_at"]), values,
                                  min_size=1, max_size=1)) if "tamper" in flaws else {}
    ids = "ids" in flaws
    return Hostile(
        body=body, subject=subject, properties=props,
        message_id=draw(st.text(min_size=1, max_size=128)) if ids else str(uuid.uuid4()),
        correlation_id=draw(st.one_of(st.none(), TEXT)) if ids else None,
        signer=signer, forged=draw(FORGERIES) if signer == FORGED else "", tamper=tamper)
