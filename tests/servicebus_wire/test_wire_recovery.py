"""Resubmitting dead letters, closing sessions and withdrawing schedules through the real
SDK over AMQP 1.0 on loopback: what the adapter sends and settles, in which order."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from arcflare.bus.port import (
    ORIGINAL_MESSAGE_ID,
    BusError,
    MessageNotFound,
    OutgoingMessage,
    SessionLockLost,
)

from .conftest import receive_all

pytestmark = pytest.mark.servicebus_wire


def dead_letter_one(bus, message_id: str = "failed-once") -> None:
    bus.send("orders", [OutgoingMessage(b'{"n": 1}', message_id, subject="AddSite",
                                        correlation_id="c-1",
                                        application_properties={"site": "a"})])
    [received] = receive_all(bus, "orders", 1)
    bus.dead_letter(received, "Broken", "try later")


def stored(peer, queue: str):
    return peer.call(lambda h: [(str(r.message.id), dict(r.message.properties or {}),
                                 r.lock_token) for r in getattr(h.store.entity("orders"), queue)])


def test_resubmit_sends_a_copy_under_a_new_id_before_completing_the_dead_letter(peer, bus):
    dead_letter_one(bus)
    before = len(peer.call(lambda h: list(h.frames)))

    copy_id = bus.resubmit_dead_letter("orders", "failed-once")

    frames = peer.call(lambda h: list(h.frames))[before:]
    assert frames.index("send orders x1") < frames.index("settle accepted")
    assert stored(peer, "dead_letters") == []
    [(message_id, properties, _)] = stored(peer, "active")
    assert message_id == copy_id != "failed-once"
    assert properties == {"site": "a", ORIGINAL_MESSAGE_ID: "failed-once"}
    [again] = receive_all(bus, "orders", 1)
    assert (again.message_id, again.subject, again.correlation_id) == (copy_id, "AddSite", "c-1")
    bus.complete(again)


def test_a_resubmit_whose_send_fails_leaves_the_dead_letter_ready_for_another(peer, bus):
    dead_letter_one(bus)
    peer.call(lambda h: h.refused.add("orders"))

    with pytest.raises(BusError):
        bus.resubmit_dead_letter("orders", "failed-once")

    assert [m for m, _, _ in stored(peer, "dead_letters")] == ["failed-once"]
    assert stored(peer, "active") == []
    assert "settle modified" in peer.call(lambda h: list(h.frames))  # given back at once
    peer.call(lambda h: h.refused.discard("orders"))
    copy_id = bus.resubmit_dead_letter("orders", "failed-once")
    assert [m for m, _, _ in stored(peer, "active")] == [copy_id]
    assert stored(peer, "dead_letters") == []


def test_resubmitting_an_id_that_is_not_dead_lettered_is_reported(peer, bus):
    dead_letter_one(bus)

    with pytest.raises(MessageNotFound):
        bus.resubmit_dead_letter("orders", "some-other-id")

    assert [m for m, _, _ in stored(peer, "dead_letters")] == ["failed-once"]
    bus.resubmit_dead_letter("orders", "failed-once")  # what was looked through is back
    assert stored(peer, "dead_letters") == []


def test_closing_a_session_hands_its_unsettled_messages_to_the_next_holder(peer, bus):
    bus.send("provisioner", [OutgoingMessage(b"{}", f"s-{i}", session_id="fed")
                             for i in range(3)])
    first = bus.accept_session("provisioner", session_id="fed", max_wait=2.0)
    [held] = first.receive(max_messages=1, max_wait=1.0)
    first.close()

    with pytest.raises(SessionLockLost):
        bus.complete(held)
    with pytest.raises(SessionLockLost):
        first.receive(max_wait=0.5)
    with bus.accept_session("provisioner", session_id="fed", max_wait=2.0) as second:
        got = []
        while len(got) < 3 and (batch := second.receive(max_messages=3, max_wait=1.0)):
            got += batch
        for message in got:
            bus.complete(message)

    assert held.message_id == "s-0"
    assert [(m.message_id, m.delivery_count) for m in got] == [
        ("s-0", 1), ("s-1", 1), ("s-2", 1)]


def test_a_duplicate_scheduled_send_gets_a_number_that_cancels_nothing(peer, bus):
    later = datetime.now(UTC) + timedelta(hours=1)
    first = bus.schedule("orders", OutgoingMessage(b"{}", "warn-1"), later)
    second = bus.schedule("orders", OutgoingMessage(b"{}", "warn-1"), later)

    with pytest.raises(MessageNotFound, match="Missing sequence numbers"):
        bus.cancel_scheduled("orders", second)
    assert [m for m, _, _ in stored(peer, "active")] == ["warn-1"]

    bus.cancel_scheduled("orders", first)
    assert second != first and stored(peer, "active") == []
    with pytest.raises(MessageNotFound):
        bus.cancel_scheduled("orders", first)  # the sender link is still good afterwards
    bus.send("orders", [OutgoingMessage(b"{}", "after")])
    assert [m for m, _, _ in stored(peer, "active")] == ["after"]
