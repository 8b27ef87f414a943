"""The real azure-servicebus SDK, through AzureServiceBus, against the loopback peer."""
from __future__ import annotations

import pytest
from arcflare.bus.azure import AzureBusOptions, AzureServiceBus

from .peer.server import ServiceBusPeer
from .peer.store import Entity


@pytest.fixture
def peer():
    entities = [
        Entity("orders", lock_duration=30, max_delivery_count=3),
        # short locks: lock expiry, renewal and reconnection happen within a test
        Entity("short-locks", lock_duration=1.5),
        Entity("provisioner", requires_session=True, lock_duration=30),
        Entity("events", lock_duration=30),
    ]
    with ServiceBusPeer(entities) as running:
        yield running


def options_for(peer: ServiceBusPeer, **overrides) -> AzureBusOptions:
    values = {"connection_string": peer.connection_string, "retry_total": 1,
              "retry_backoff_factor": 0.1, "retry_backoff_max": 1.0, "stall_after_s": 3600,
              "min_receive_wait_s": 0.3}
    values.update(overrides)
    return AzureBusOptions(**values)


@pytest.fixture
def bus(peer):
    adapter = AzureServiceBus(options_for(peer))
    try:
        yield adapter
    finally:
        adapter.close()


def receive_all(bus, entity, count, *, timeout=15.0, **kwargs):
    """Receive until `count` messages arrived (the peer streams them over a few frames)."""
    import time

    got, deadline = [], time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got += bus.receive(entity, max_messages=count - len(got), max_wait=1.0, **kwargs)
    return got
