"""A scheduled message can be withdrawn: before it leaves the outbox, or at the broker."""
from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta

from arcflare.contracts.events import SiteRemoved
from arcflare.runtime.outbox import OutboxRelay
from arcflare.runtime.state import StateStore

LATER = timedelta(days=30)


def scheduled(bus) -> int:
    """Scheduled copies held for the events topic's subscribers, summed."""
    return sum(s.scheduled for s in bus.stats() if s.entity_path.startswith("events/"))


def publish_later(store: StateStore, site: str = "site-1") -> str:
    with store.unit_of_work() as uow:
        return uow.publish(SiteRemoved(federation="fed", site=site),
                           at=datetime.now(UTC) + LATER)


def cancel(store: StateStore, message_id: str) -> bool:
    with store.unit_of_work() as uow:
        return uow.cancel_scheduled(message_id)


def outbox_row(store: StateStore, message_id: str) -> sqlite3.Row:
    with store.connect() as db:
        return db.execute("SELECT * FROM _outbox WHERE id = ?", (message_id,)).fetchone()


def test_withdrawn_before_the_relay_it_never_reaches_the_broker(tmp_path, bus):
    store = StateStore(tmp_path / "state.db")
    relay = OutboxRelay(store, bus)
    message_id = publish_later(store)

    assert cancel(store, message_id)
    relay.relay()

    assert scheduled(bus) == 0
    row = outbox_row(store, message_id)
    assert row["cancel"] == "done" and row["sequence_number"] is None


def test_withdrawn_after_the_relay_it_is_cancelled_at_the_broker(tmp_path, bus):
    store = StateStore(tmp_path / "state.db")
    relay = OutboxRelay(store, bus)
    kept = publish_later(store, "site-2")
    message_id = publish_later(store)
    relay.relay()
    per_message = scheduled(bus) // 2
    assert per_message >= 1 and outbox_row(store, message_id)["sequence_number"] is not None

    assert cancel(store, message_id)
    assert store.outbox_written.is_set()  # the relay is woken for it
    relay.relay()

    assert scheduled(bus) == per_message  # only the other one is left
    assert outbox_row(store, message_id)["cancel"] == "done"
    assert outbox_row(store, kept)["cancel"] is None


def test_withdrawn_in_the_unit_that_published_it_nothing_is_written(tmp_path, bus):
    store = StateStore(tmp_path / "state.db")
    with store.unit_of_work() as uow:
        message_id = uow.publish(SiteRemoved(federation="fed", site="s"),
                                 at=datetime.now(UTC) + LATER)
        assert uow.cancel_scheduled(message_id)

    assert outbox_row(store, message_id) is None


def test_only_a_scheduled_message_still_waiting_can_be_withdrawn(tmp_path, bus):
    store = StateStore(tmp_path / "state.db")
    with store.unit_of_work() as uow:
        now_id = uow.publish(SiteRemoved(federation="fed", site="s"))
    message_id = publish_later(store)

    assert not cancel(store, now_id)
    assert not cancel(store, "no-such-message")
    assert cancel(store, message_id) and not cancel(store, message_id)  # once


def test_a_state_file_from_before_cancellation_is_upgraded(tmp_path, bus):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.executescript("""
            CREATE TABLE _outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
                entity TEXT NOT NULL, envelope TEXT NOT NULL, deliver_at TEXT,
                created_at TEXT NOT NULL, sent_at TEXT);
        """)
    store = StateStore(path)
    relay = OutboxRelay(store, bus)
    message_id = publish_later(store)
    relay.relay()

    assert cancel(store, message_id)
    relay.relay()
    assert scheduled(bus) == 0


class RefusesFirstCancel:
    """The real bus, except that its first cancel_scheduled fails as a broker might."""

    def __init__(self, bus) -> None:
        self.bus = bus
        self.refused = 0

    def __getattr__(self, name):
        return getattr(self.bus, name)

    def cancel_scheduled(self, entity: str, sequence_number: int) -> None:
        if not self.refused:
            self.refused += 1
            raise ConnectionError("the broker is away")
        self.bus.cancel_scheduled(entity, sequence_number)


def test_a_cancellation_the_broker_refused_is_retried_later(tmp_path, bus):
    store = StateStore(tmp_path / "state.db")
    flaky = RefusesFirstCancel(bus)
    relay = OutboxRelay(store, flaky, cancel_retry_s=0.3)
    message_id = publish_later(store)
    relay.relay()
    assert cancel(store, message_id)

    relay.relay()
    refused = outbox_row(store, message_id)["cancel"]
    relay.relay()  # before the retry is due: not tried again
    not_yet = outbox_row(store, message_id)["cancel"]
    time.sleep(0.4)
    relay.relay()

    assert flaky.refused == 1 and refused == not_yet == "requested"
    assert outbox_row(store, message_id)["cancel"] == "done"
    assert scheduled(bus) == 0
