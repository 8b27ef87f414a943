"""Fuzz, fast tier: hostile messages thrown at the codec, the signature check, admission and
one consumer's whole processing (admit, refuse, inbox, settle, outbox) without a broker.

Each property says that a message can only end one of the expected ways: the codec fails
only with a DecodeError naming the failure, the verifier only with Unauthenticated,
admission only with Refused, and the processor settles every message exactly once, with a
reason when it dead-letters it, and leaves nothing in its outbox that cannot be sent.
"""
from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest
from arcflare.bus.codec import MAX_DEPTH, DecodeError, check_depth, envelope_of, wire_of
from arcflare.bus.port import MessageTooLarge, OutgoingMessage
from arcflare.bus.sqlite.send import message_size
from arcflare.contracts.base import message_types
from arcflare.contracts.envelope import MAX_ID_LENGTH, MAX_MESSAGE_BYTES
from arcflare.contracts.topology import TOPOLOGY
from arcflare.runtime import Consumer, StateStore
from arcflare.runtime.admission import Admission, Refused
from arcflare.runtime.consumer import MessageProcessor
from arcflare.runtime.identity import verifier
from arcflare.runtime.outbox import OutboxRelay
from arcflare.runtime.settings import Settings
from arcflare.trust.errors import Unauthenticated
from arcflare.trust.jws import b64url
from hypothesis import event, example, given
from hypothesis import strategies as st

from tests.fuzz.budget import fuzz
from tests.fuzz.hostile import (
    ALLOWED,
    FORGERIES,
    SERVICE_BUS_VALUES,
    TEXT,
    Hostile,
    Signers,
    hostile_messages,
)
from tests.support.signing import identities_in

pytestmark = pytest.mark.fuzz


@pytest.fixture(scope="module")
def trusted(tmp_path_factory) -> tuple[Admission, Signers]:
    """Admission as every consumer does it, over a data dir's local identities."""
    data_dir = identities_in(tmp_path_factory.mktemp("fuzz-codec") / "data")
    return Admission(verifier(Settings(data_dir=data_dir))), Signers(data_dir)


# --- the codec ----------------------------------------------------------------------------
@fuzz(400)
@given(hostile_messages(values=SERVICE_BUS_VALUES, bytes_keys=True), st.one_of(st.none(), TEXT))
def test_routing_properties_are_read_bounded_or_refused_with_a_reason(hostile, signature):
    try:
        wire = wire_of(hostile.received(signature))
    except DecodeError as exc:
        assert exc.reason and exc.description
        return
    assert len(wire.message_id) <= MAX_ID_LENGTH and len(wire.type) <= MAX_ID_LENGTH
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in wire.properties.items())
    try:
        envelope_of(wire, hostile.received(signature))
    except DecodeError as exc:
        assert exc.reason and exc.description


def _depth(value) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


@st.composite
def nested(draw: st.DrawFn):
    """JSON nested to a chosen depth around the cap, with strings full of brackets and
    escapes beside each level (which the depth check must not count)."""
    value = draw(st.one_of(st.integers(), TEXT, st.just([]), st.just({})))
    for _ in range(draw(st.integers(0, MAX_DEPTH + 8))):
        noise = draw(st.lists(st.sampled_from(['[', ']', '{', '}', '"', '\\', '\\"', 'x']),
                              max_size=4).map("".join))
        value = [noise, value] if draw(st.booleans()) else {noise: value, "n": noise}
    return value


@fuzz(300)
@given(nested(), st.booleans())
def test_the_depth_check_agrees_with_the_parser(value, ascii_only):
    body = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    try:
        check_depth(body)
    except DecodeError as exc:
        assert exc.reason == "TooDeep"
        assert _depth(value) > MAX_DEPTH
    else:
        assert _depth(value) <= MAX_DEPTH


@fuzz(300)
@given(st.binary(max_size=4000))
def test_the_depth_check_fails_only_with_a_decode_error_on_any_bytes(body):
    try:
        check_depth(body)
    except DecodeError as exc:
        assert exc.reason == "TooDeep"


# --- the signature check and admission -----------------------------------------------------
def _jws(header: bytes, signature: bytes = b"\0") -> str:
    return f"{b64url(header)}..{b64url(signature)}"


@fuzz(300)
@given(FORGERIES, st.binary(max_size=200))
# found by this test: a header nested too deep escaped as RecursionError, and a non-ASCII
# x5c entry as UnicodeEncodeError (both ended as "Undecodable" instead of Unauthenticated)
@example(_jws(b"[" * 5000), b"")
@example(_jws(json.dumps({"alg": "ES256", "x5c": ["\u0080"]}).encode()), b"")
def test_a_forged_signature_is_unauthenticated_and_nothing_else(trusted, token, body):
    admission, _ = trusted
    with pytest.raises(Unauthenticated):
        admission.verifier.verify(token, {"message_id": "m", "type": "SiteHeartbeat"}, body)


@fuzz(400)
@given(hostile_messages(values=SERVICE_BUS_VALUES, bytes_keys=True), st.booleans())
# found by this test: a lone surrogate (a JSON escape on the embedded broker) in a signed
# property made the signature check raise UnicodeEncodeError
@example(Hostile(body=b"", subject="AbortJob", signer=ALLOWED, properties={
    "type": "AbortJob", "federation": "fz", "site": "site-1", "occurred_at": "\ud800"}), False)
def test_admission_admits_or_refuses_with_a_reason(trusted, hostile, command):
    admission, signers = trusted
    hostile, signature = signers.sign(hostile)
    try:
        admitted = admission.admit(hostile.received(signature), command=command)
    except Refused as refused:
        assert refused.reason and refused.detail
        return
    assert admitted.envelope.issued_by == admitted.principal.id
    assert admitted.envelope.type == type(admitted.message).__name__


# --- one consumer's whole processing, without a broker --------------------------------------
class Settlements:
    """The bus as a consumer sees it, recording how each message ended and what was sent —
    a stand-in for the broker in this unit test of the processing around it (the broker
    itself is fuzzed in test_service_fuzz)."""

    topology = TOPOLOGY

    def __init__(self) -> None:
        self.ends: list[tuple[str, str, str | None]] = []
        self.sent: list[OutgoingMessage] = []

    def complete(self, message) -> None:
        self.ends.append((message.message_id, "completed", None))

    def dead_letter(self, message, reason: str, description: str | None = None) -> None:
        self.ends.append((message.message_id, "dead-lettered", reason))

    def abandon(self, message) -> None:
        self.ends.append((message.message_id, "abandoned", None))

    def send(self, entity: str, messages) -> None:
        for message in messages:
            if message_size(message) > MAX_MESSAGE_BYTES:
                raise MessageTooLarge(f"{message.subject} is over the limit")
        self.sent.extend(messages)


def echo(message, *, uow) -> None:
    """Says again what it was told: whatever was admitted must also be sendable."""
    uow.publish(message) if message.category == "event" else uow.send(message)


@pytest.fixture(scope="module")
def processing(trusted, tmp_path_factory):
    admission, signers = trusted
    state = StateStore(tmp_path_factory.mktemp("fuzz-processing") / "state.db")
    bus = Settlements()
    commands = {c: echo for c in message_types().values() if c.category == "command"}
    events = {c: echo for c in message_types().values() if c.category == "event"}
    processors = {
        kind: MessageProcessor(consumer, bus=bus, state=state, admission=admission,
                               dependencies={}, authorize=None, backoff=lambda n: 0.0,
                               stopping=threading.Event())
        for kind, consumer in (("command", Consumer("provisioner", handlers=commands)),
                               ("event", Consumer("events", subscription="ledger",
                                                  handlers=events)))}
    relay = OutboxRelay(state, bus, signers.get("service:provisioner"), service="fuzz")
    return processors, relay, bus, signers


SUBMIT_WITH_A_LONE_SURROGATE = Hostile(
    body=b'{"federation": "fz", "name": "n", "package": {"kind": "recipe", "recipe": "r", '
         b'"parameters": {"p": "\\ud800"}}}',
    subject="SubmitJob", signer=ALLOWED,
    properties={"type": "SubmitJob", "federation": "fz", "occurred_at": datetime.now(UTC).isoformat()})


@fuzz(300)
@given(hostile_messages(), st.sampled_from(["command", "event"]), st.sampled_from([1, 10]))
# found by this test: a value no JSON can carry (a lone surrogate, admitted inside a free-form
# field) made committing the handler's work raise outside the handler's error handling, so
# the message was never settled and the consumer loop restarted
@example(SUBMIT_WITH_A_LONE_SURROGATE, "command", 1)
@example(SUBMIT_WITH_A_LONE_SURROGATE, "command", 10)
def test_every_message_is_settled_once_and_the_outbox_drains(processing, hostile, kind,
                                                             delivery_count):
    processors, relay, bus, signers = processing
    hostile, signature = signers.sign(hostile)
    received = hostile.received(signature, delivery_count=delivery_count)
    before = len(bus.ends)

    outcome = processors[kind].process(received)

    event(f"{outcome} {bus.ends[-1][2]}")
    [(message_id, end, reason)] = bus.ends[before:]
    assert message_id == received.message_id
    assert (outcome, end) in {("handled", "completed"), ("ignored", "completed"),
                              ("duplicate", "completed"), ("rejected", "dead-lettered"),
                              ("duplicate", "dead-lettered"), ("exhausted", "dead-lettered"),
                              ("abandoned", "abandoned")}
    assert end != "dead-lettered" or reason
    relay.relay()
    assert relay.pending() == 0
