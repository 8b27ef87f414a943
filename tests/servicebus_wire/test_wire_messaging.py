"""Sending, receiving and settling through the real SDK over AMQP 1.0 on loopback."""
from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from arcflare.bus.codec import from_received, to_outgoing
from arcflare.bus.port import OutgoingMessage, SubQueue
from arcflare.contracts.envelope import Envelope

from tests.support.signing import throwaway_signer

from .conftest import receive_all

pytestmark = pytest.mark.servicebus_wire

SIGNER = throwaway_signer()


def envelope(n: int = 0, federation: str = "fed-ü") -> Envelope:
    return Envelope(type="SiteProvisioned", correlation_id=f"cmd-{n}", causation_id=f"cause-{n}",
                    federation=federation, site="site-1", issued_by="ana@example.org",
                    payload={"n": n, "note": "Zürich → 東京"})


def records(peer, entity: str, queue: str = "active"):
    return peer.call(lambda h: [(r.message.id, r.delivery_count, r.dead_letter_reason,
                                 r.dead_letter_description)
                                for r in getattr(h.store.entity(entity), queue)])


def test_send_then_receive_carries_every_envelope_field(peer, bus):
    sent = envelope(1)

    bus.send("orders", [to_outgoing(sent, time_to_live=timedelta(minutes=5), signer=SIGNER)])
    [received] = receive_all(bus, "orders", 1)

    assert from_received(received) == sent.model_copy(update={"issued_by": SIGNER.principal.id})
    assert received.subject == "SiteProvisioned"
    assert received.correlation_id == "cmd-1"
    assert received.application_properties["federation"] == "fed-ü"  # decoded from bytes
    assert received.delivery_count == 1
    assert received.lock_token and received.locked_until > datetime.now(UTC)
    assert received.expires_at is not None
    bus.complete(received)


def test_a_batch_is_one_transfer_and_every_message_arrives(peer, bus):
    batch = [to_outgoing(envelope(n), signer=SIGNER) for n in range(3)]

    bus.send("orders", batch)

    assert "send orders x3" in peer.call(lambda h: list(h.frames))
    got = receive_all(bus, "orders", 3)
    assert sorted(m.message_id for m in got) == sorted(m.message_id for m in batch)
    for m in got:
        bus.complete(m)


def test_complete_removes_the_message_after_the_broker_confirms(peer, bus):
    bus.send("orders", [to_outgoing(envelope(2), signer=SIGNER)])
    [received] = receive_all(bus, "orders", 1)

    bus.complete(received)

    assert records(peer, "orders") == []
    assert "settle accepted" in peer.call(lambda h: list(h.frames))


def test_abandon_redelivers_with_a_higher_delivery_count(peer, bus):
    bus.send("orders", [to_outgoing(envelope(3), signer=SIGNER)])
    [first] = receive_all(bus, "orders", 1)

    bus.abandon(first)
    [again] = receive_all(bus, "orders", 1)

    assert again.message_id == first.message_id
    assert again.delivery_count == 2
    assert again.lock_token != first.lock_token
    bus.complete(again)


def test_abandoned_past_max_delivery_count_is_dead_lettered_by_the_broker(peer, bus):
    bus.send("orders", [to_outgoing(envelope(4), signer=SIGNER)])

    for _ in range(3):  # the entity's max delivery count
        [received] = receive_all(bus, "orders", 1)
        bus.abandon(received)

    [dead] = receive_all(bus, "orders", 1, sub_queue=SubQueue.DEAD_LETTER)
    assert dead.dead_letter_reason == "MaxDeliveryCountExceeded"
    bus.complete(dead)


def test_dead_letter_carries_reason_and_description(peer, bus):
    bus.send("orders", [to_outgoing(envelope(5), signer=SIGNER)])
    [received] = receive_all(bus, "orders", 1)

    bus.dead_letter(received, "InvalidJson", "the body is not JSON: line 1")

    [dead] = receive_all(bus, "orders", 1, sub_queue=SubQueue.DEAD_LETTER)
    assert (dead.message_id, dead.dead_letter_reason, dead.dead_letter_error_description) == (
        received.message_id, "InvalidJson", "the body is not JSON: line 1")
    assert dead.dead_letter_source == "orders"


def test_schedule_then_cancel_and_a_due_schedule_arrives(peer, bus):
    later = to_outgoing(envelope(6), signer=SIGNER)
    soon = to_outgoing(envelope(7), signer=SIGNER)

    number = bus.schedule("orders", later, datetime.now(UTC) + timedelta(hours=1))
    bus.schedule("orders", soon, datetime.now(UTC) + timedelta(seconds=1))
    bus.cancel_scheduled("orders", number)

    got = receive_all(bus, "orders", 1)
    assert [m.message_id for m in got] == [soon.message_id]
    assert [r[0] for r in records(peer, "orders")] == [soon.message_id]  # `later` is gone
    bus.complete(got[0])


def test_session_receive_locks_one_session_with_its_state(peer, bus):
    for federation, n in (("fed-a", 1), ("fed-b", 2), ("fed-a", 3)):
        bus.send("provisioner", [to_outgoing(envelope(n, federation), session=True, signer=SIGNER)])

    with bus.accept_session("provisioner", max_wait=2.0) as first:
        got = first.receive(max_messages=5, max_wait=1.0)
        assert {m.session_id for m in got} == {first.session_id}
        first.set_state(b'{"step": 2}')
        assert first.get_state() == b'{"step": 2}'
        assert first.renew_lock() > datetime.now(UTC)
        for m in got:
            bus.complete(m)
    with bus.accept_session("provisioner", max_wait=2.0) as second:
        assert second.session_id != first.session_id
        rest = second.receive(max_messages=5, max_wait=1.0)
        for m in rest:
            bus.complete(m)

    assert len(got) + len(rest) == 3
    assert [from_received(m).payload["n"] for m in got + rest if m.session_id == "fed-a"] == [1, 3]


def test_accepting_a_session_when_none_has_messages_returns_none(peer, bus):
    assert bus.accept_session("provisioner", max_wait=0.5) is None


def test_settlements_from_many_handler_threads_all_land(peer, bus):
    bus.send("orders", [to_outgoing(envelope(n), signer=SIGNER) for n in range(12)])
    got = receive_all(bus, "orders", 12)
    errors: list[BaseException] = []

    def settle(message):
        try:
            bus.complete(message)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=settle, args=(m,)) for m in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    assert errors == []
    assert records(peer, "orders") == []


def test_a_message_from_another_producer_keeps_what_it_had(peer, bus):
    bus.send("orders", [OutgoingMessage(body=b"\xff\xfe not json", message_id="foreign-1",
                                        content_type=None,
                                        application_properties={"attempt": 3, "ok": True})])

    [received] = receive_all(bus, "orders", 1)

    assert received.body == b"\xff\xfe not json"
    assert received.subject is None
    assert received.application_properties == {"attempt": 3, "ok": True}
    bus.complete(received)


def test_sessions_held_at_once_are_bounded(peer):
    from arcflare.bus.azure import AzureServiceBus

    from .conftest import options_for

    bus = AzureServiceBus(options_for(peer, max_concurrent_sessions=1))
    try:
        for federation in ("fed-a", "fed-b"):
            bus.send("provisioner", [to_outgoing(envelope(1, federation), session=True, signer=SIGNER)])
        first = bus.accept_session("provisioner", max_wait=2.0)

        assert bus.accept_session("provisioner", max_wait=0.3) is None  # one at a time

        for m in first.receive(max_messages=5, max_wait=1.0):
            bus.complete(m)
        first.close()
        with bus.accept_session("provisioner", max_wait=2.0) as second:
            assert second.session_id != first.session_id
            for m in second.receive(max_messages=5, max_wait=1.0):
                bus.complete(m)
    finally:
        bus.close()
