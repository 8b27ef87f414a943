"""Failures the adapter must live through: dropped connections, silent receivers,
handlers that outlive their lock, missing entities and other producers' bad input."""
from __future__ import annotations

import threading
import time

import pytest
from arcflare.bus.azure import AzureServiceBus
from arcflare.bus.codec import to_outgoing
from arcflare.bus.port import BusError, EntityNotFound, MessageLockLost, SubQueue
from arcflare.contracts.envelope import Envelope
from azure.servicebus import ServiceBusClient, ServiceBusMessage

from tests.support.signing import identities_in, throwaway_signer

from .conftest import options_for, receive_all

pytestmark = pytest.mark.servicebus_wire

SIGNER = throwaway_signer()


def envelope(n: int) -> Envelope:
    return Envelope(type="SiteProvisioned", federation="fed", payload={"n": n})


def completed_ids(peer) -> set[str]:
    return peer.call(lambda h: {str(r.message.id) for r in h.store.completed})


def test_a_connection_dropped_mid_receive_loses_nothing(peer, bus):
    sent = [to_outgoing(envelope(n), signer=SIGNER) for n in range(6)]
    bus.send("short-locks", sent)
    held = receive_all(bus, "short-locks", 3)  # locked, in a handler, when the line drops
    waiting: list = []
    receiving = threading.Thread(
        target=lambda: waiting.extend(bus.receive("short-locks", max_messages=6, max_wait=2.0)))

    receiving.start()
    time.sleep(0.2)
    assert peer.drop_connections() >= 1
    receiving.join(timeout=30)
    for message in held + waiting:
        try:  # settles over $management if its lock is still alive, else the broker takes it back
            bus.complete(message)
        except MessageLockLost:
            pass
    deadline = time.monotonic() + 30
    while completed_ids(peer) != {m.message_id for m in sent} and time.monotonic() < deadline:
        for message in bus.receive("short-locks", max_messages=6, max_wait=1.0):
            bus.complete(message)

    assert completed_ids(peer) == {m.message_id for m in sent}
    attaches = [f for f in peer.call(lambda h: list(h.frames)) if f == "attach entity short-locks"]
    assert len(attaches) >= 2  # received again over a new connection


def test_the_watchdog_rebuilds_a_receiver_that_went_silent(peer):
    bus = AzureServiceBus(options_for(peer, stall_after_s=1.0))
    try:
        assert bus.receive("orders", max_wait=0.3) == []  # the receiver is attached
        assert peer.call(lambda h: h.wedge_receivers("orders")) == 1
        sent = [to_outgoing(envelope(n), signer=SIGNER) for n in range(2)]
        bus.send("orders", sent)

        got = receive_all(bus, "orders", 2, timeout=20)

        assert sorted(m.message_id for m in got) == sorted(m.message_id for m in sent)
        assert bus._slot("orders", None, SubQueue.ACTIVE).rebuilds >= 1
        for message in got:
            bus.complete(message)
    finally:
        bus.close()


def test_a_handler_that_outlives_the_lock_keeps_it(peer, bus):
    bus.send("short-locks", [to_outgoing(envelope(1), signer=SIGNER)])
    [received] = receive_all(bus, "short-locks", 1)

    time.sleep(3.5)  # the handler runs for more than twice the 1.5 s lock
    bus.complete(received)

    assert completed_ids(peer) == {received.message_id}
    assert "com.microsoft:renew-lock" in peer.call(lambda h: list(h.frames))


def test_an_explicit_renewal_extends_the_lock(peer, bus):
    bus.send("orders", [to_outgoing(envelope(2), signer=SIGNER)])
    [received] = receive_all(bus, "orders", 1)

    renewed = bus.renew_lock(received)

    assert renewed > received.locked_until
    bus.complete(received)


def test_a_missing_entity_is_named(peer, bus):
    with pytest.raises(EntityNotFound, match="arcflare bus init"):
        bus.receive("no-such-queue", max_wait=0.3)
    # the SDK reports a sender's refused attach without its condition: named, not typed
    with pytest.raises(BusError, match="sending to no-such-queue"):
        bus.send("no-such-queue", [to_outgoing(envelope(3), signer=SIGNER)])


def test_bad_input_from_another_producer_is_dead_lettered_like_on_the_embedded_broker(
        peer, bus, tmp_path):
    from arcflare.bus.sqlite import SqliteBus

    foreign = [
        ServiceBusMessage(b"not json {", session_id="fed", message_id="bad-json",
                          subject="CreateFederation"),
        ServiceBusMessage(b'{"name": "x"}', session_id="fed", message_id="no-type"),
        ServiceBusMessage(b'{"x": 1}', session_id="fed", message_id="unknown",
                          subject="Bogus", application_properties={"type": "Bogus"}),
    ]
    with ServiceBusClient.from_connection_string(peer.connection_string) as client, \
            client.get_queue_sender("provisioner") as sender:
        sender.send_messages(foreign)
    embedded = SqliteBus(tmp_path / "bus.db")
    embedded.send("provisioner", [_as_outgoing(m) for m in foreign])

    reasons = {name: _dead_letter_reasons(b, tmp_path / name)
               for name, b in (("azure", bus), ("embedded", embedded))}

    assert reasons["azure"] == reasons["embedded"]
    assert set(reasons["azure"]) == {"bad-json", "no-type", "unknown"}


def _as_outgoing(message: ServiceBusMessage):
    from arcflare.bus.port import OutgoingMessage

    props = {k.decode() if isinstance(k, bytes) else k: v
             for k, v in (message.application_properties or {}).items()}
    return OutgoingMessage(body=b"".join(message.body), message_id=message.message_id,
                           subject=message.subject, session_id=message.session_id,
                           content_type=None, application_properties=props)


def _dead_letter_reasons(bus, data_dir) -> dict[str, str]:
    from arcflare.runtime import Consumer, Service, Settings, StateStore

    settings = Settings(data_dir=identities_in(data_dir))
    svc = Service(name="provisioner", settings=settings, bus=bus,
                  state=StateStore(data_dir / "wire.db"),
                  consumers=[Consumer("provisioner", handlers={})])
    svc.drain(timeout=20)
    dead = receive_all(bus, "provisioner", 3, timeout=10, sub_queue=SubQueue.DEAD_LETTER)
    return {m.message_id: m.dead_letter_reason for m in dead}
