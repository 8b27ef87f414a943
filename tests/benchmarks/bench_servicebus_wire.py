"""AzureServiceBus over real AMQP (the loopback Service Bus peer) beside the bare SDK.

Both move the same messages through the same peer: send in batches of 20, receive
up to 20 at a time, complete each (7.15 waits for the broker's echo). The ratio is
the adapter's own cost: mapping, supervision, lock tracking, lock renewal.

Only the steady state is timed: the SDK spends about a second opening a link (it
polls readiness every 50 ms) and another closing one (it joins a keep-alive thread
that sleeps 1 s), the same on both sides; timing that flattened both to the same
~100 msg/s. The peer runs in a process of its own, so its work does not share the
measured client's interpreter lock.
"""
from __future__ import annotations

import subprocess
import sys
import time

from arcflare.bus.azure import AzureBusOptions, AzureServiceBus
from arcflare.bus.codec import to_outgoing
from arcflare.contracts.envelope import Envelope
from azure.servicebus import ServiceBusClient, ServiceBusMessage

from tests.benchmarks.harness import ROOT
from tests.benchmarks.noise import alternate, runs
from tests.support.signing import throwaway_signer

COUNT = 2000
BATCH = 20
ENTITIES = ("bare", "adapter")


def _outgoing(count: int) -> list:
    """Signed, as every message on the bus is: both sides carry the same signature bytes."""
    signer = throwaway_signer()
    return [to_outgoing(e, signer=signer) for e in _envelopes(count)]


def _envelopes(count: int) -> list[Envelope]:
    return [Envelope(type="SiteHeartbeat", federation="fed", site="s", payload={"n": n})
            for n in range(count)]


class BareSdk:
    """The SDK as its samples use it, with its sender and receiver kept open."""

    def __init__(self, connection_string: str) -> None:
        self.client = ServiceBusClient.from_connection_string(connection_string)
        self.sender = self.client.get_queue_sender("bare")
        self.receiver = self.client.get_queue_receiver("bare")
        self.cpu: list[float] = []
        self.move(1)  # opens both links

    def move(self, count: int) -> float:
        outgoing = _outgoing(count)
        started, cpu = time.perf_counter(), time.process_time()
        for i in range(0, count, BATCH):
            batch = self.sender.create_message_batch()
            for m in outgoing[i:i + BATCH]:
                batch.add_message(ServiceBusMessage(
                    m.body, message_id=m.message_id, subject=m.subject,
                    correlation_id=m.correlation_id, content_type=m.content_type,
                    application_properties=dict(m.application_properties)))
            self.sender.send_messages(batch)
        done = 0
        while done < count:
            for message in self.receiver.receive_messages(max_message_count=BATCH,
                                                          max_wait_time=1):
                self.receiver.complete_message(message)
                done += 1
        self.cpu.append(time.process_time() - cpu)
        return time.perf_counter() - started

    def close(self) -> None:
        self.sender.close()
        self.receiver.close()
        self.client.close()


class Adapter:
    """ArcFlare's Bus adapter on the same peer, its links kept open the same way."""

    def __init__(self, connection_string: str) -> None:
        self.bus = AzureServiceBus(AzureBusOptions(connection_string=connection_string))
        self.cpu: list[float] = []
        self.move(1)

    def move(self, count: int) -> float:
        outgoing = _outgoing(count)
        started, cpu = time.perf_counter(), time.process_time()
        for i in range(0, count, BATCH):
            self.bus.send("adapter", outgoing[i:i + BATCH])
        done = 0
        while done < count:
            for message in self.bus.receive("adapter", max_messages=BATCH, max_wait=1):
                self.bus.complete(message)
                done += 1
        self.cpu.append(time.process_time() - cpu)
        return time.perf_counter() - started

    def close(self) -> None:
        self.bus.close()


def run(results) -> None:
    peer = subprocess.Popen([sys.executable, "-m", "tests.benchmarks.bench_servicebus_wire",
                             "peer"], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        connection_string = peer.stdout.readline().strip()
        if not connection_string:
            raise RuntimeError("the Service Bus peer did not start")
        bare, adapter = BareSdk(connection_string), Adapter(connection_string)
        try:
            seconds = alternate(runs(3, "servicebus_wire"), bare=lambda _: bare.move(COUNT),
                                adapter=lambda _: adapter.move(COUNT))
        finally:
            adapter.close()
            bare.close()
    finally:
        peer.stdin.close()
        peer.wait(timeout=30)
    results.compare("servicebus_wire.send_receive_complete_rate",
                    [COUNT / s for s in seconds["adapter"]], [COUNT / s for s in seconds["bare"]],
                    "msg/s", target=">= 0.83", higher_is_better=True,
                    note=f"{COUNT} messages per run, batches of {BATCH}, links open")
    # context: the client's CPU per message, where the adapter's own work shows undiluted
    # by the round trips both sides wait on (the lock renewer's thread included)
    results.compare("servicebus_wire.client_cpu_ms_per_1000_messages",
                    [c / COUNT * 1e6 for c in adapter.cpu[1:]],
                    [c / COUNT * 1e6 for c in bare.cpu[1:]], "ms")


def _serve_peer() -> None:
    """The peer in this process until stdin closes; its connection string on stdout."""
    from tests.servicebus_wire.peer.server import ServiceBusPeer
    from tests.servicebus_wire.peer.store import Entity

    with ServiceBusPeer([Entity(name) for name in ENTITIES]) as peer:
        print(peer.connection_string, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    if sys.argv[1:] == ["peer"]:
        _serve_peer()
