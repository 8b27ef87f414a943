"""AzureServiceBus over real AMQP (the loopback Service Bus peer) beside the bare SDK.

Both move the same messages through the same peer: send in batches of 20, receive
up to 20 at a time, complete each (7.15 waits for the broker's echo). The ratio is
the adapter's own cost: mapping, supervision, lock tracking, lock renewal.
"""
from __future__ import annotations

import time

from arcflare.bus.azure import AzureBusOptions, AzureServiceBus
from arcflare.bus.codec import to_outgoing
from arcflare.contracts.envelope import Envelope
from azure.servicebus import ServiceBusClient, ServiceBusMessage

from tests.servicebus_wire.peer.server import ServiceBusPeer
from tests.servicebus_wire.peer.store import Entity
from tests.support.signing import throwaway_signer

COUNT = 200
BATCH = 20

SIGNER = throwaway_signer()


def _envelopes() -> list[Envelope]:
    return [Envelope(type="SiteHeartbeat", federation="fed", site="s", payload={"n": n})
            for n in range(COUNT)]


def _bare_sdk(peer: ServiceBusPeer) -> float:
    outgoing = [to_outgoing(e, signer=SIGNER) for e in _envelopes()]
    started = time.perf_counter()
    with ServiceBusClient.from_connection_string(peer.connection_string) as client:
        with client.get_queue_sender("bare") as sender:
            for i in range(0, COUNT, BATCH):
                batch = sender.create_message_batch()
                for m in outgoing[i:i + BATCH]:
                    batch.add_message(ServiceBusMessage(
                        m.body, message_id=m.message_id, subject=m.subject,
                        correlation_id=m.correlation_id, content_type=m.content_type,
                        application_properties=dict(m.application_properties)))
                sender.send_messages(batch)
        done = 0
        with client.get_queue_receiver("bare") as receiver:
            while done < COUNT:
                for message in receiver.receive_messages(max_message_count=BATCH,
                                                         max_wait_time=1):
                    receiver.complete_message(message)
                    done += 1
    return time.perf_counter() - started


def _adapter(peer: ServiceBusPeer) -> float:
    outgoing = [to_outgoing(e, signer=SIGNER) for e in _envelopes()]
    started = time.perf_counter()
    bus = AzureServiceBus(AzureBusOptions(connection_string=peer.connection_string))
    try:
        for i in range(0, COUNT, BATCH):
            bus.send("adapter", outgoing[i:i + BATCH])
        done = 0
        while done < COUNT:
            for message in bus.receive("adapter", max_messages=BATCH, max_wait=1):
                bus.complete(message)
                done += 1
    finally:
        bus.close()
    return time.perf_counter() - started


def run(results) -> None:
    with ServiceBusPeer([Entity("bare"), Entity("adapter")]) as peer:
        _bare_sdk(peer)  # warm-up: imports, first connection
        bare = min(_bare_sdk(peer) for _ in range(2))
        adapter = min(_adapter(peer) for _ in range(2))
    rate = COUNT / adapter
    results.add("servicebus_wire.send_receive_complete_rate", rate, "msg/s",
                baseline=COUNT / bare, ratio=adapter / bare, target="<= 1.2",
                ok=adapter / bare <= 1.2)
