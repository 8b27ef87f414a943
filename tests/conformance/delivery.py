"""Peek-lock delivery: locks, abandon, dead-lettering, TTL, duplicates."""
from __future__ import annotations

import time

import pytest
from arcflare.bus.port import Bus, MessageLockLost, SubQueue

from tests.conformance.base import ContractBase

DLQ = SubQueue.DEAD_LETTER


class DeliveryContract(ContractBase):
    def test_a_locked_message_is_not_given_to_a_competing_consumer(self, bus: Bus):
        bus.send(self.queue, [self.message()])
        bus.receive(*self.plain, max_wait=5)

        assert bus.receive(*self.plain, max_wait=0.2) == []

    def test_an_expired_lock_redelivers_with_delivery_count_two(self, bus: Bus):
        bus.send(self.queue, [self.message(message_id="again")])
        bus.receive(*self.plain, max_wait=5)
        self.outlive_lock()

        [again] = bus.receive(*self.plain, max_wait=5)

        assert (again.message_id, again.delivery_count) == ("again", 2)

    def test_a_renewed_lock_outlives_the_first_lock(self, bus: Bus):
        bus.send(self.queue, [self.message()])
        [got] = bus.receive(*self.plain, max_wait=5)
        self.outwaits(self.lock_seconds)
        deadline = time.monotonic() + self.lock_seconds + 0.5
        while time.monotonic() < deadline:
            renewed_until = bus.renew_lock(got)
            time.sleep(self.lock_seconds / 4)

        assert bus.receive(*self.plain, max_wait=0) == []
        assert renewed_until > got.locked_until
        bus.complete(got)

    def test_settling_after_the_lock_expired_raises_lock_lost(self, bus: Bus):
        bus.send(self.queue, [self.message()])
        [got] = bus.receive(*self.plain, max_wait=5)
        self.outlive_lock()

        with pytest.raises(MessageLockLost):
            bus.complete(got)
        with pytest.raises(MessageLockLost):
            bus.renew_lock(got)

    def test_settling_twice_raises_lock_lost(self, bus: Bus):
        bus.send(self.queue, [self.message()])
        [got] = bus.receive(*self.plain, max_wait=5)
        bus.complete(got)

        with pytest.raises(MessageLockLost):
            bus.complete(got)
        with pytest.raises(MessageLockLost):
            bus.abandon(got)

    def test_a_stale_lock_cannot_settle_the_redelivered_message(self, bus: Bus):
        bus.send(self.queue, [self.message()])
        [first] = bus.receive(*self.plain, max_wait=5)
        self.outlive_lock()
        [second] = bus.receive(*self.plain, max_wait=5)

        with pytest.raises(MessageLockLost):
            bus.complete(first)
        bus.complete(second)

    def test_an_abandoned_message_comes_back_at_once_with_count_incremented(self, bus: Bus):
        bus.send(self.queue, [self.message()])
        [got] = bus.receive(*self.plain, max_wait=5)

        bus.abandon(got)
        [again] = bus.receive(*self.plain, max_wait=5)

        assert (again.message_id, again.delivery_count) == (got.message_id, 2)

    def test_the_abandon_using_the_last_delivery_dead_letters(self, bus: Bus):
        bus.send(self.queue, [self.message(message_id="doomed")])
        for _ in range(self.max_delivery_count):
            [got] = bus.receive(*self.plain, max_wait=5)
            bus.abandon(got)

        [dead] = bus.receive(*self.plain, sub_queue=DLQ, max_wait=5)

        assert bus.receive(*self.plain, max_wait=0.2) == []
        assert (dead.message_id, dead.dead_letter_reason) == ("doomed", "MaxDeliveryCountExceeded")

    def test_expiring_locks_past_the_max_delivery_count_dead_letter(self, bus: Bus):
        bus.send(self.queue, [self.message(message_id="stuck")])
        for _ in range(self.max_delivery_count):
            assert bus.receive(*self.plain, max_wait=5)
            self.outlive_lock()

        assert bus.receive(*self.plain, max_wait=0.2) == []
        [dead] = bus.peek(*self.plain, sub_queue=DLQ)
        assert (dead.message_id, dead.dead_letter_reason) == ("stuck", "MaxDeliveryCountExceeded")

    def test_dead_letter_keeps_reason_and_description(self, bus: Bus):
        bus.send(self.queue, [self.message(message_id="bad", subject="Broken")])
        [got] = bus.receive(*self.plain, max_wait=5)

        bus.dead_letter(got, "InvalidJson", "the body is not JSON")

        [dead] = bus.peek(*self.plain, sub_queue=DLQ)
        assert (dead.message_id, dead.subject) == ("bad", "Broken")
        assert (dead.dead_letter_reason, dead.dead_letter_error_description) == (
            "InvalidJson", "the body is not JSON")
        assert bus.peek(*self.plain) == []

    def test_the_dead_letter_queue_can_be_received_and_completed(self, bus: Bus):
        bus.send(self.queue, [self.message()])
        [got] = bus.receive(*self.plain, max_wait=5)
        bus.dead_letter(got, "Broken", None)

        [dead] = bus.receive(*self.plain, sub_queue=DLQ, max_wait=5)
        bus.complete(dead)

        assert bus.peek(*self.plain, sub_queue=DLQ) == []

    def test_an_expired_message_is_never_delivered_and_is_dead_lettered(self, bus: Bus):
        bus.send(self.queue, [self.message(message_id="late", time_to_live=self.ttl(0.3))])
        time.sleep(0.6)

        assert bus.receive(*self.plain, max_wait=0.2) == []
        [dead] = bus.peek(*self.plain, sub_queue=DLQ)
        assert (dead.message_id, dead.dead_letter_reason) == ("late", "TTLExpiredException")

    def test_an_entity_default_ttl_drops_expired_messages_if_not_dead_lettering(self, bus: Bus):
        bus.send(self.topic, [self.message(message_id="fleeting")])
        self.outwaits(self.transient_ttl_seconds)
        time.sleep(self.transient_ttl_seconds + 0.3)

        assert bus.peek(self.topic, self.transient_subscription) == []
        assert bus.receive(self.topic, self.transient_subscription, max_wait=0.2) == []
        assert bus.peek(self.topic, self.transient_subscription, sub_queue=DLQ) == []
        [kept] = bus.peek(self.topic, self.all_subscription)
        assert kept.message_id == "fleeting"

    def test_a_duplicate_message_id_inside_the_window_is_dropped(self, bus: Bus):
        bus.send(self.queue, [self.message(b"first", message_id="once")])
        bus.send(self.queue, [self.message(b"second", message_id="once")])

        got = self.receive_all(bus, *self.plain, count=2, max_wait=0.5)

        assert [m.body for m in got] == [b"first"]

    def test_a_duplicate_is_dropped_even_after_the_first_copy_was_completed(self, bus: Bus):
        bus.send(self.queue, [self.message(message_id="done-once")])
        [got] = bus.receive(*self.plain, max_wait=5)
        bus.complete(got)

        bus.send(self.queue, [self.message(message_id="done-once")])

        assert bus.receive(*self.plain, max_wait=0.3) == []

    def test_a_message_id_is_accepted_again_once_the_window_has_passed(self, bus: Bus):
        self.outwaits(self.duplicate_window_seconds)
        bus.send(self.brief_queue, [self.message(b"first", message_id="window")])
        self.pause(self.duplicate_window_seconds + 0.5)

        bus.send(self.brief_queue, [self.message(b"second", message_id="window")])
        got = self.receive_all(bus, self.brief_queue, self.brief_subscription, count=3,
                               max_wait=1)

        assert [m.body for m in got] == [b"first", b"second"]
