"""The bus contract against the embedded SQLite broker."""
from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from arcflare.bus.port import Bus, BusError, EntityNotFound, OutgoingMessage
from arcflare.bus.sqlite import SqliteBus

from tests.conformance.bus_contract import BusContract
from tests.conformance.topology import CONFORMANCE_TOPOLOGY


@pytest.mark.conformance
class TestSqliteBus(BusContract):
    @pytest.fixture
    def bus_factory(self, tmp_path: Path) -> Callable[[], Bus]:
        return functools.partial(SqliteBus, tmp_path / "bus.db", CONFORMANCE_TOPOLOGY)


@pytest.mark.conformance
class TestSqliteBusSpecifics:
    """What only the embedded broker promises (beyond the contract)."""

    @pytest.fixture
    def bus(self, tmp_path: Path):
        with SqliteBus(tmp_path / "bus.db", CONFORMANCE_TOPOLOGY) as bus:
            yield bus

    def test_expired_copies_in_a_subscription_nobody_receives_are_purged(self, bus: SqliteBus):
        bus.send("news", [OutgoingMessage(b"{}", "now")])
        bus.schedule("news", OutgoingMessage(b"{}", "soon"),
                     datetime.now(UTC) + timedelta(seconds=0.2))
        time.sleep(1.5)

        bus.purge_expired()

        left = bus._conn().execute(
            "SELECT COUNT(*) FROM messages WHERE entity = 'news/subscriptions/transient'"
        ).fetchone()[0]
        assert left == 0
        assert len(bus.peek("news", "all")) == 2

    def test_a_subscription_made_by_one_process_is_used_by_another(self, tmp_path: Path):
        with SqliteBus(tmp_path / "bus.db", CONFORMANCE_TOPOLOGY) as creator, \
                SqliteBus(tmp_path / "bus.db", CONFORMANCE_TOPOLOGY) as sender:
            sender.send("news", [OutgoingMessage(b"{}", "warm-up")])
            creator.ensure_subscription("news", "late", None)

            sender.send("news", [OutgoingMessage(b"{}", "after")])

            assert [m.message_id for m in creator.peek("news", "late")] == ["after"]

    def test_a_session_queue_is_received_only_through_sessions(self, bus: SqliteBus):
        with pytest.raises(BusError, match="accept_session"):
            bus.receive("orders")
        with pytest.raises(BusError, match="does not use sessions"):
            bus.accept_session("work")

    def test_sending_to_a_subscription_is_refused(self, bus: SqliteBus):
        with pytest.raises(EntityNotFound, match="send to its topic"):
            bus.send("news/subscriptions/all", [OutgoingMessage(b"{}", "x")])

    def test_a_closed_bus_refuses_further_use(self, tmp_path: Path):
        bus = SqliteBus(tmp_path / "bus.db", CONFORMANCE_TOPOLOGY)
        bus.close()

        with pytest.raises(BusError, match="closed"):
            bus.peek("work")

    def test_a_doorbell_registration_left_by_a_killed_process_is_removed(self, bus: SqliteBus):
        assert bus.receive("work", max_wait=0.05) == []  # registers this thread's doorbell
        [folder] = bus._doorbell.root.iterdir()
        [registration] = folder.iterdir()
        orphan = folder / (registration.name.split("-")[0] + "-0123456789abcdef")
        orphan.touch()

        bus.send("work", [OutgoingMessage(b"{}", "wake")])

        assert not orphan.exists()
        assert len(list(folder.iterdir())) == 1

    def test_a_thread_that_ended_gives_back_its_doorbell(self, bus: SqliteBus):
        # a long-running process starts threads for as long as it runs (HTTP handlers,
        # service restarts): each waiting thread's socket must not outlive it
        def wait_once() -> None:
            bus.receive("work", max_wait=0.05)

        first = threading.Thread(target=wait_once)
        first.start()
        first.join()
        [(_, ended)] = bus._doorbell._listeners
        assert not ended.closed

        later = threading.Thread(target=wait_once)
        later.start()
        later.join()

        assert ended.closed and ended.socket.fileno() == -1
        [folder] = bus._doorbell.root.iterdir()
        assert len(list(folder.iterdir())) == 1  # the ended thread's registration is gone
