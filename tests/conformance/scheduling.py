"""Scheduled messages: when they appear, how long they live, cancelling them, duplicates."""
from __future__ import annotations

import pytest
from arcflare.bus.port import Bus, MessageNotFound, SubQueue

from tests.conformance.base import ContractBase


class SchedulingContract(ContractBase):
    def scheduled_on(self, bus: Bus) -> int:
        """Held by the queue or topic it was sent to (a subscription has no such count)."""
        return {s.entity_path: s for s in bus.stats()}[self.queue].scheduled

    def test_a_scheduled_message_waits_for_its_time(self, bus: Bus):
        sequence = bus.schedule(self.queue, self.message(message_id="later"), self.later(1.5))

        early = bus.receive(*self.plain, max_wait=0)
        [due] = bus.receive(*self.plain, max_wait=10)

        assert early == [] and sequence > 0
        assert due.message_id == "later"

    def test_a_cancelled_scheduled_message_is_never_delivered(self, bus: Bus):
        sequence = bus.schedule(self.queue, self.message(), self.later(1))

        bus.cancel_scheduled(self.queue, sequence)
        self.pause(1.3)

        assert bus.receive(*self.plain, max_wait=0.2) == []
        assert self.scheduled_on(bus) == 0

    def test_a_due_message_is_enqueued_under_a_new_sequence_number(self, bus: Bus):
        # a follower peeking onwards from what it saw last must not miss it
        due, meanwhile = self.unique("due"), self.unique("meanwhile")
        scheduled = bus.schedule(self.queue, self.message(message_id=due), self.later(1))
        bus.send(self.queue, [self.message(message_id=meanwhile)])
        [seen] = [m for m in bus.peek(*self.plain, max_messages=100) if m.message_id == meanwhile]

        self.pause(1.5)
        onwards = bus.peek(*self.plain, from_sequence_number=seen.sequence_number + 1)

        [enqueued] = [m for m in onwards if m.message_id == due]
        assert enqueued.sequence_number > seen.sequence_number
        assert enqueued.sequence_number != scheduled

    def test_a_scheduled_message_lives_its_ttl_from_when_it_falls_due(self, bus: Bus):
        fresh = self.unique("fresh")
        bus.schedule(self.queue, self.message(message_id=fresh, time_to_live=self.ttl(1.5)),
                     self.later(2))
        self.pause(2.6)  # past its TTL counted from the schedule call, not from when due

        [got] = bus.receive(*self.plain, max_wait=5)

        assert got.message_id == fresh
        assert (got.expires_at - got.enqueued_time).total_seconds() == pytest.approx(1.5, abs=0.1)

    def test_a_scheduled_message_expires_its_ttl_after_it_fell_due(self, bus: Bus):
        stale = self.unique("stale")
        bus.schedule(self.queue, self.message(message_id=stale, time_to_live=self.ttl(0.5)),
                     self.later(1))
        self.pause(2)

        assert bus.receive(*self.plain, max_wait=0.2) == []
        [dead] = [m for m in bus.peek(*self.plain, sub_queue=SubQueue.DEAD_LETTER,
                                      max_messages=100) if m.message_id == stale]
        assert dead.dead_letter_reason == "TTLExpiredException"

    def test_cancelling_an_unknown_sequence_number_raises_message_not_found(self, bus: Bus):
        with pytest.raises(MessageNotFound):
            bus.cancel_scheduled(self.queue, 987_654_321)

    def test_cancelling_a_message_that_fell_due_raises_message_not_found(self, bus: Bus):
        went = self.unique("went")
        sequence = bus.schedule(self.queue, self.message(message_id=went), self.later(0.5))
        [got] = bus.receive(*self.plain, max_wait=10)

        with pytest.raises(MessageNotFound):
            bus.cancel_scheduled(self.queue, sequence)
        assert got.message_id == went

    def test_cancelling_twice_raises_message_not_found(self, bus: Bus):
        sequence = bus.schedule(self.queue, self.message(), self.later(60))
        bus.cancel_scheduled(self.queue, sequence)

        with pytest.raises(MessageNotFound):
            bus.cancel_scheduled(self.queue, sequence)

    def test_a_duplicate_scheduled_send_gets_a_number_that_cancels_nothing(self, bus: Bus):
        twice = self.unique("twice")
        first = bus.schedule(self.queue, self.message(b"first", message_id=twice),
                             self.later(1.5))
        second = bus.schedule(self.queue, self.message(b"second", message_id=twice),
                              self.later(1.5))

        with pytest.raises(MessageNotFound):
            bus.cancel_scheduled(self.queue, second)
        got = self.receive_all(bus, *self.plain, count=2, max_wait=5)

        assert second > 0 and second != first
        assert [m.body for m in got] == [b"first"]  # the duplicate was dropped, the first kept

    def test_the_first_number_still_cancels_after_a_duplicate_was_scheduled(self, bus: Bus):
        withdrawn = self.unique("withdrawn")
        first = bus.schedule(self.queue, self.message(message_id=withdrawn), self.later(1))
        bus.schedule(self.queue, self.message(message_id=withdrawn), self.later(1))

        bus.cancel_scheduled(self.queue, first)
        self.pause(1.5)

        assert bus.receive(*self.plain, max_wait=0.3) == []
        assert self.scheduled_on(bus) == 0
