"""Sending, receiving, limits, peek and stats."""
from __future__ import annotations

import threading

import pytest
from arcflare.bus.port import (
    Bus,
    EntityNotFound,
    InvalidMessage,
    MessageTooLarge,
    entity_path,
)

from tests.conformance.base import ContractBase


class BasicsContract(ContractBase):
    def test_a_sent_message_is_received_with_its_body_headers_and_properties(self, bus: Bus):
        sent = self.message(b'{"hello": "world"}', subject="Greeted", correlation_id="c-1",
                            application_properties={"site": "a", "n": 3, "ok": True, "x": 1.5})

        bus.send(self.queue, [sent])
        [got] = bus.receive(*self.plain, max_wait=5)

        assert (got.body, got.message_id, got.subject, got.correlation_id) == (
            sent.body, sent.message_id, "Greeted", "c-1")
        assert got.content_type == "application/json"
        assert got.application_properties == {"site": "a", "n": 3, "ok": True, "x": 1.5}
        assert got.enqueued_time is not None and got.sequence_number > 0

    def test_the_first_delivery_has_count_one_and_a_lock(self, bus: Bus):
        bus.send(self.queue, [self.message()])

        [got] = bus.receive(*self.plain, max_wait=5)

        assert got.delivery_count == 1
        assert got.lock_token and got.locked_until is not None

    def test_a_completed_message_is_gone(self, bus: Bus):
        bus.send(self.queue, [self.message()])
        [got] = bus.receive(*self.plain, max_wait=5)

        bus.complete(got)

        assert bus.peek(*self.plain) == []
        assert bus.receive(*self.plain, max_wait=0.2) == []

    def test_receiving_from_an_empty_queue_returns_nothing_after_max_wait(self, bus: Bus):
        assert bus.receive(*self.plain, max_wait=0.3) == []

    def test_a_batch_arrives_complete_in_sequence_order(self, bus: Bus):
        sent = [self.message(message_id=f"batch-{i}") for i in range(20)]

        bus.send(self.queue, sent)
        got = self.receive_all(bus, *self.plain, count=20)

        assert [m.message_id for m in got] == [m.message_id for m in sent]
        assert [m.sequence_number for m in got] == sorted(m.sequence_number for m in got)

    def test_an_unknown_entity_is_reported(self, bus: Bus):
        with pytest.raises(EntityNotFound):
            bus.send("no-such-queue", [self.message()])
        with pytest.raises(EntityNotFound):
            bus.receive("no-such-queue")

    def test_a_message_over_256_kib_is_refused_with_its_size(self, bus: Bus):
        with pytest.raises(MessageTooLarge, match="256"):
            bus.send(self.queue, [self.message(b"x" * (256 * 1024 + 1))])
        assert bus.peek(*self.plain) == []

    def test_a_message_just_under_the_limit_is_accepted(self, bus: Bus):
        bus.send(self.queue, [self.message(b"x" * (250 * 1024))])

        [got] = bus.receive(*self.plain, max_wait=5)

        assert len(got.body) == 250 * 1024

    def test_a_message_id_over_128_characters_is_refused(self, bus: Bus):
        with pytest.raises(InvalidMessage, match="message_id"):
            bus.send(self.queue, [self.message(message_id="m" * 129)])

    def test_a_session_id_over_128_characters_is_refused(self, bus: Bus):
        with pytest.raises(InvalidMessage, match="session_id"):
            bus.send(self.session_queue, [self.message(session_id="s" * 129)])

    def test_a_session_queue_refuses_a_message_without_session_id(self, bus: Bus):
        with pytest.raises(InvalidMessage, match="session"):
            bus.send(self.session_queue, [self.message()])

    def test_a_refused_message_refuses_its_whole_batch(self, bus: Bus):
        with pytest.raises(InvalidMessage):
            bus.send(self.queue, [self.message(), self.message(message_id="m" * 129)])
        assert bus.peek(*self.plain) == []

    def test_peek_neither_locks_nor_counts_a_delivery(self, bus: Bus):
        bus.send(self.queue, [self.message()])

        [peeked] = bus.peek(*self.plain)
        [got] = bus.receive(*self.plain, max_wait=5)

        assert peeked.lock_token is None
        assert got.message_id == peeked.message_id and got.delivery_count == 1

    def test_peek_reads_in_sequence_order_from_a_sequence_number(self, bus: Bus):
        bus.send(self.queue, [self.message(message_id=f"p-{i}") for i in range(6)])
        first = bus.peek(*self.plain, max_messages=3)

        rest = bus.peek(*self.plain, from_sequence_number=first[-1].sequence_number + 1)

        assert [m.message_id for m in first + rest] == [f"p-{i}" for i in range(6)]

    def test_stats_count_active_locked_scheduled_and_dead_lettered(self, bus: Bus):
        bus.send(self.queue, [self.message() for _ in range(3)])
        bus.schedule(self.queue, self.message(), self.later(60))
        _still_locked, second = bus.receive(*self.plain, max_messages=2, max_wait=5)
        bus.dead_letter(second, "Broken", "test")

        stats = {s.entity_path: s for s in bus.stats()}
        received = stats[entity_path(*self.plain)]

        assert (received.active, received.locked, received.dead_lettered) == (2, 1, 1)
        assert stats[self.queue].scheduled == 1  # held by the queue or topic it was sent to

    def test_threads_share_one_bus_without_losing_or_duplicating(self, bus: Bus):
        bus.send(self.queue, [self.message(message_id=f"t-{i}") for i in range(60)])
        seen: list[str] = []

        def consume() -> None:
            while got := bus.receive(*self.plain, max_messages=5, max_wait=0.5):
                for message in got:
                    bus.complete(message)
                    seen.append(message.message_id)

        threads = [threading.Thread(target=consume) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

        assert sorted(seen) == sorted(f"t-{i}" for i in range(60))
