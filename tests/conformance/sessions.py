"""Sessions: FIFO, an exclusive lock per session, session state, lock expiry."""
from __future__ import annotations

import pytest
from arcflare.bus.port import Bus, SessionLockLost

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
