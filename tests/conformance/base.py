"""What every part of the bus contract shares: entity names, fixtures, helpers.

A subclass of BusContract provides `bus_factory` (a picklable zero-argument
callable returning a connected Bus, so spawned consumer processes can build
their own) and sets the entity names below to entities that exist where it
runs, with the options described next to each.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from arcflare.bus.port import Bus, OutgoingMessage, ReceivedMessage


class ContractBase:
    #: a queue without sessions; lock `lock_seconds`, max delivery `max_delivery_count`,
    #: dead-lettering on expiration. Or a topic, with queue_subscription naming one of
    #: its subscriptions without rules (where no such queue exists, as in TOPOLOGY).
    queue = "work"
    queue_subscription: str | None = None
    #: the same, with a lock that outlasts a slow consumer (competing consumers)
    crowded_queue = "crowd"
    crowded_subscription: str | None = None
    #: a queue that requires sessions; lock `lock_seconds`
    session_queue = "orders"
    topic = "news"
    #: a subscription of `topic` without rules
    all_subscription = "all"
    #: a subscription of `topic` with two rules: subject == filtered_subject, OR
    #: the application property filtered_property[0] == filtered_property[1]
    #: (None where the subscription has only the subject rule)
    filtered_subscription = "created"
    filtered_subject = "Created"
    filtered_property: tuple[str, str] | None = ("colour", "red")
    #: a subscription of `topic` without rules, default TTL `transient_ttl_seconds`,
    #: that drops expired messages instead of dead-lettering them
    transient_subscription = "transient"
    transient_ttl_seconds = 1.0
    #: like `queue` (or a topic and subscription), with a duplicate-detection window of
    #: `duplicate_window_seconds`
    brief_queue = "brief"
    brief_subscription: str | None = None
    duplicate_window_seconds = 1.0
    lock_seconds = 1.0
    max_delivery_count = 3
    #: tests that must outwait a lock or a TTL longer than this skip themselves
    longest_wait_seconds = 30.0

    @property
    def plain(self) -> tuple[str, str | None]:
        """Where messages sent to `queue` are received from."""
        return self.queue, self.queue_subscription

    def outwaits(self, seconds: float) -> None:
        if seconds > self.longest_wait_seconds:
            pytest.skip(f"needs to outwait {seconds:.0f} s here (longest_wait_seconds)")

    @pytest.fixture
    def bus_factory(self) -> Callable[[], Bus]:
        raise NotImplementedError("a BusContract subclass provides the bus_factory fixture")

    @pytest.fixture
    def bus(self, bus_factory: Callable[[], Bus]) -> Iterator[Bus]:
        bus = bus_factory()
        try:
            yield bus
        finally:
            bus.close()

    # --- helpers ---------------------------------------------------------------------
    @staticmethod
    def unique(prefix: str) -> str:
        """An id no earlier run used: a live namespace remembers ids for its whole
        duplicate-detection window, and keeps what a failed run left behind."""
        return f"{prefix}-{uuid.uuid4().hex[:12]}"

    @staticmethod
    def message(body: bytes = b'{"n": 1}', **fields) -> OutgoingMessage:
        fields.setdefault("message_id", f"m-{uuid.uuid4()}")
        return OutgoingMessage(body=body, **fields)

    def outlive_lock(self) -> None:
        self.outwaits(self.lock_seconds)
        time.sleep(self.lock_seconds + 0.3)

    @staticmethod
    def receive_all(bus: Bus, entity: str, subscription: str | None = None, *, count: int,
                    max_wait: float = 10.0, **kwargs) -> list[ReceivedMessage]:
        """Receive until `count` messages arrived or nothing more comes within max_wait,
        completing each at once: waiting on for more must not outlast its lock."""
        got: list[ReceivedMessage] = []
        while len(got) < count:
            batch = bus.receive(entity, subscription, max_messages=count - len(got),
                                max_wait=max_wait, **kwargs)
            if not batch:
                break
            for message in batch:
                bus.complete(message)
            got += batch
        return got

    @staticmethod
    def ttl(seconds: float) -> timedelta:
        return timedelta(seconds=seconds)

    @staticmethod
    def later(seconds: float) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=seconds)

    @staticmethod
    def pause(seconds: float) -> None:
        time.sleep(seconds)
