"""Sessions: FIFO, an exclusive lock per session, session state, lock expiry."""
from __future__ import annotations

import pytest
from arcflare.bus.port import Bus, ReceivedMessage, Session, SessionLockLost, SubQueue

from tests.conformance.base import ContractBase


class SessionContract(ContractBase):
    def test_a_session_delivers_in_order(self, bus: Bus):
        bus.send(self.session_queue,
                 [self.message(message_id=f"s-{i}", session_id="fed-a") for i in range(5)])

        with bus.accept_session(self.session_queue, session_id="fed-a", max_wait=5) as session:
            got = []
            while batch := session.receive(max_messages=2, max_wait=0.5):
                got += batch
                for message in batch:
                    bus.complete(message)

        assert [m.message_id for m in got] == [f"s-{i}" for i in range(5)]

    def test_a_session_is_locked_to_one_receiver(self, bus: Bus):
        bus.send(self.session_queue, [self.message(session_id="fed-a")])

        with bus.accept_session(self.session_queue, session_id="fed-a", max_wait=5):
            second = bus.accept_session(self.session_queue, session_id="fed-a", max_wait=0.2)
            other = bus.accept_session(self.session_queue, max_wait=0.2)

        assert second is None and other is None

    def test_accepting_the_next_session_picks_one_with_messages(self, bus: Bus):
        bus.send(self.session_queue, [self.message(session_id="fed-a"),
                                      self.message(session_id="fed-b")])

        with bus.accept_session(self.session_queue, max_wait=5) as first, \
                bus.accept_session(self.session_queue, max_wait=5) as second:
            ids = {first.session_id, second.session_id}
            [message] = second.receive(max_wait=5)

        assert ids == {"fed-a", "fed-b"}
        assert message.session_id == second.session_id

    def test_a_session_only_receives_its_own_messages(self, bus: Bus):
        bus.send(self.session_queue, [self.message(session_id="fed-b", message_id="b"),
                                      self.message(session_id="fed-a", message_id="a")])

        with bus.accept_session(self.session_queue, session_id="fed-a", max_wait=5) as session:
            got = session.receive(max_messages=5, max_wait=0.5)

        assert [m.message_id for m in got] == ["a"]

    def test_session_state_is_kept_between_holders(self, bus: Bus):
        with bus.accept_session(self.session_queue, session_id="fed-s", max_wait=5) as session:
            assert session.get_state() is None
            session.set_state(b'{"step": 2}')

        with bus.accept_session(self.session_queue, session_id="fed-s", max_wait=5) as session:
            assert session.get_state() == b'{"step": 2}'

    def test_a_closed_session_can_be_accepted_again(self, bus: Bus):
        bus.send(self.session_queue, [self.message(session_id="fed-c")])
        session = bus.accept_session(self.session_queue, session_id="fed-c", max_wait=5)

        session.close()

        assert bus.accept_session(self.session_queue, session_id="fed-c", max_wait=5) is not None

    def test_an_expired_session_lock_releases_the_session_and_its_messages(self, bus: Bus):
        bus.send(self.session_queue, [self.message(session_id="fed-x", message_id="x")])
        lost = bus.accept_session(self.session_queue, session_id="fed-x", max_wait=5)
        assert len(lost.receive(max_wait=5)) == 1
        self.outlive_lock()

        with bus.accept_session(self.session_queue, max_wait=5) as taken_over:
            [again] = taken_over.receive(max_wait=5)

        assert taken_over.session_id == "fed-x"
        assert (again.message_id, again.delivery_count) == ("x", 2)
        with pytest.raises(SessionLockLost):
            lost.set_state(b"stale")

    def test_a_renewed_session_lock_keeps_the_session(self, bus: Bus):
        bus.send(self.session_queue, [self.message(session_id="fed-r")])
        self.outwaits(self.lock_seconds)
        session = bus.accept_session(self.session_queue, session_id="fed-r", max_wait=5)
        [held] = session.receive(max_wait=5)
        for _ in range(4):
            session.renew_lock()
            self.pause(self.lock_seconds / 3)

        assert bus.accept_session(self.session_queue, session_id="fed-r", max_wait=0) is None
        bus.complete(held)
        session.close()

    def test_closing_a_session_gives_its_unsettled_messages_to_the_next_holder_in_order(
        self, bus: Bus
    ):
        fed = self.unique("fed")
        bus.send(self.session_queue,
                 [self.message(message_id=f"{fed}-{i}", session_id=fed) for i in range(3)])
        with bus.accept_session(self.session_queue, session_id=fed, max_wait=5) as first:
            [held] = first.receive(max_wait=5)

        with bus.accept_session(self.session_queue, session_id=fed, max_wait=5) as second:
            got = self.receive_in_session(bus, second, count=3)

        assert held.message_id == f"{fed}-0"
        # closing is not a failed delivery: only a lost session lock counts one
        assert [(m.message_id, m.delivery_count) for m in got] == [
            (f"{fed}-0", 1), (f"{fed}-1", 1), (f"{fed}-2", 1)]

    def test_settling_through_a_closed_session_raises_session_lock_lost(self, bus: Bus):
        fed = self.unique("fed")
        bus.send(self.session_queue, [self.message(session_id=fed) for _ in range(4)])
        session = bus.accept_session(self.session_queue, session_id=fed, max_wait=5)
        held = self.receive_in_session(bus, session, count=4, complete=False)
        session.close()

        for settle in (bus.complete, bus.abandon, bus.renew_lock,
                       lambda m: bus.dead_letter(m, "Broken", None)):
            with pytest.raises(SessionLockLost):
                settle(held.pop())
        with pytest.raises(SessionLockLost):
            session.receive(max_wait=0)
        with bus.accept_session(self.session_queue, session_id=fed, max_wait=5) as again:
            assert len(self.receive_in_session(bus, again, count=4)) == 4

    def test_settling_after_the_session_lock_expired_raises_session_lock_lost(self, bus: Bus):
        fed = self.unique("fed")
        bus.send(self.session_queue, [self.message(session_id=fed)])
        session = bus.accept_session(self.session_queue, session_id=fed, max_wait=5)
        [held] = session.receive(max_wait=5)
        self.outlive_lock()

        with pytest.raises(SessionLockLost):
            bus.complete(held)
        with pytest.raises(SessionLockLost):
            bus.renew_lock(held)
        session.close()

    def test_an_abandoned_session_message_comes_back_before_the_rest(self, bus: Bus):
        fed = self.unique("fed")
        bus.send(self.session_queue,
                 [self.message(message_id=f"{fed}-{i}", session_id=fed) for i in range(3)])
        with bus.accept_session(self.session_queue, session_id=fed, max_wait=5) as session:
            [first] = session.receive(max_wait=5)
            bus.abandon(first)
            got = self.receive_in_session(bus, session, count=3)

        assert [(m.message_id, m.delivery_count) for m in got] == [
            (f"{fed}-0", 2), (f"{fed}-1", 1), (f"{fed}-2", 1)]

    def test_a_session_message_abandoned_max_delivery_count_times_is_dead_lettered(
        self, bus: Bus
    ):
        fed, poison = self.unique("fed"), self.unique("poison")
        bus.send(self.session_queue, [self.message(message_id=poison, session_id=fed),
                                      self.message(session_id=fed)])
        with bus.accept_session(self.session_queue, session_id=fed, max_wait=5) as session:
            for _ in range(self.max_delivery_count):
                [got] = session.receive(max_wait=5)
                assert got.message_id == poison
                bus.abandon(got)
            [after] = session.receive(max_wait=5)
            bus.complete(after)

        [dead] = [m for m in bus.peek(self.session_queue, sub_queue=SubQueue.DEAD_LETTER,
                                      max_messages=100) if m.message_id == poison]
        assert dead.dead_letter_reason == "MaxDeliveryCountExceeded"
        assert after.message_id != poison

    def receive_in_session(self, bus: Bus, session: Session, *, count: int,
                           complete: bool = True) -> list[ReceivedMessage]:
        """Up to `count` messages, waiting no longer than the session lock lasts."""
        got: list[ReceivedMessage] = []
        wait = min(2.0, self.lock_seconds / 2)
        while len(got) < count and (batch := session.receive(max_messages=count - len(got),
                                                             max_wait=wait)):
            got += batch
        for message in got if complete else ():
            bus.complete(message)
        return got
