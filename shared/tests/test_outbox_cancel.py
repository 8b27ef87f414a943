"""A scheduled message can be withdrawn, whenever the process died: it waits in the outbox
until it is due, so withdrawing it is a local write. Rows an older version scheduled at the
broker are still cancelled there."""
from __future__ import annotations

import contextlib
import sqlite3
import time
from datetime import UTC, datetime, timedelta

import pytest
from arcflare.bus.codec import to_outgoing
from arcflare.contracts.envelope import Envelope
from arcflare.contracts.events import SiteRemoved
from arcflare.runtime.outbox import OutboxRelay
from arcflare.runtime.state import StateStore

from tests.support.signing import signer_for

LATER = timedelta(days=30)


def scheduled(bus) -> int:
    """Scheduled messages the broker holds for the events topic: with the topic until due,
    as Service Bus does (older embedded brokers kept a copy per subscriber)."""
    return sum(s.scheduled for s in bus.stats()
               if s.entity_path == "events" or s.entity_path.startswith("events/"))


def publish_later(store: StateStore, site: str = "site-1") -> str:
    with store.unit_of_work() as uow:
        return uow.publish(SiteRemoved(federation="fed", site=site),
                           at=datetime.now(UTC) + LATER)


def cancel(store: StateStore, message_id: str) -> bool:
    with store.unit_of_work() as uow:
        return uow.cancel_scheduled(message_id)


@pytest.fixture
def signer(tmp_path):
    return signer_for(tmp_path / "ids", "service:provisioner")


def outbox_row(store: StateStore, message_id: str) -> sqlite3.Row:
    with store.connect() as db:
        return db.execute("SELECT * FROM _outbox WHERE id = ?", (message_id,)).fetchone()


def test_a_scheduled_message_never_goes_to_the_broker_before_it_is_due(tmp_path, bus, signer):
    store = StateStore(tmp_path / "state.db")
    relay = OutboxRelay(store, bus, signer)
    message_id = publish_later(store)

    relay.relay()

    assert scheduled(bus) == 0 and bus.peek("events", "cli") == []
    assert outbox_row(store, message_id)["sent_at"] is None
    assert relay.next_due() is not None and relay.pending() == 0


def test_withdrawn_before_it_is_due_it_never_leaves_even_after_a_restart(tmp_path, bus, signer):
    store = StateStore(tmp_path / "state.db")
    OutboxRelay(store, bus, signer).relay()
    message_id = publish_later(store)
    OutboxRelay(store, bus, signer).relay()  # then the process dies

    restarted = StateStore(tmp_path / "state.db")
    assert cancel(restarted, message_id)
    OutboxRelay(restarted, bus, signer).relay()

    assert scheduled(bus) == 0 and bus.peek("events", "cli") == []
    row = outbox_row(restarted, message_id)
    assert row["cancel"] == "done" and row["sequence_number"] is None
    assert OutboxRelay(restarted, bus, signer).next_due() is None


def _scheduled_at_the_broker_by_an_older_version(store, bus, signer) -> str:
    """What a version before 0.2 left: a row scheduled at the broker, its number recorded."""
    message_id = publish_later(store)
    with store.connect() as db:
        row = db.execute("SELECT envelope, deliver_at FROM _outbox WHERE id = ?",
                         (message_id,)).fetchone()
        number = bus.schedule("events", to_outgoing(Envelope.model_validate_json(row[0]),
                                                    signer=signer),
                              datetime.fromisoformat(row[1]))
        db.execute("UPDATE _outbox SET sent_at = ?, sequence_number = ? WHERE id = ?",
                   (datetime.now(UTC).isoformat(), number, message_id))
    return message_id


def test_an_older_versions_broker_scheduled_row_is_cancelled_at_the_broker(tmp_path, bus, signer):
    store = StateStore(tmp_path / "state.db")
    relay = OutboxRelay(store, bus, signer)
    message_id = _scheduled_at_the_broker_by_an_older_version(store, bus, signer)
    assert scheduled(bus) >= 1

    assert cancel(store, message_id)
    assert store.outbox_written.is_set()  # the relay is woken for it
    relay.relay()

    assert scheduled(bus) == 0
    assert outbox_row(store, message_id)["cancel"] == "done"


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


def test_a_state_file_from_before_cancellation_is_upgraded(tmp_path, bus, signer):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.executescript("""
            CREATE TABLE _outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
                entity TEXT NOT NULL, envelope TEXT NOT NULL, deliver_at TEXT,
                created_at TEXT NOT NULL, sent_at TEXT);
        """)
    store = StateStore(path)
    relay = OutboxRelay(store, bus, signer)
    message_id = publish_later(store)
    relay.relay()

    assert cancel(store, message_id)
    relay.relay()
    assert scheduled(bus) == 0 and bus.peek("events", "cli") == []
    with store.connect() as db:
        columns = {r["name"] for r in db.execute("PRAGMA table_info(_outbox)")}
    assert {"sequence_number", "cancel", "parked"} <= columns


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


def test_a_cancellation_the_broker_refused_is_retried_later(tmp_path, bus, signer):
    store = StateStore(tmp_path / "state.db")
    flaky = RefusesFirstCancel(bus)
    relay = OutboxRelay(store, flaky, signer, cancel_retry_s=0.3)
    message_id = _scheduled_at_the_broker_by_an_older_version(store, bus, signer)
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


class Crash(BaseException):
    """The process dying: nothing after it runs."""


class DiesAfterHandingOver:
    """The real bus; the process dies right after the broker took a message, before the
    outbox could record anything about it."""

    def __init__(self, bus) -> None:
        self.bus = bus

    def __getattr__(self, name):
        return getattr(self.bus, name)

    def send(self, entity: str, messages) -> None:
        self.bus.send(entity, messages)
        raise Crash

    def schedule(self, entity: str, message, at: datetime) -> int:
        self.bus.schedule(entity, message, at)
        raise Crash


def test_a_crash_right_after_the_broker_took_a_message_leaves_it_withdrawable(
        tmp_path, bus, signer):
    """Once, the broker scheduled the message before the outbox recorded its sequence number:
    after a crash in between, the re-send was a duplicate answered with 0, and withdrawing
    'cancelled' sequence 0 while the message still arrived."""
    store = StateStore(tmp_path / "state.db")
    with store.unit_of_work() as uow:
        message_id = uow.publish(SiteRemoved(federation="fed", site="s"),
                                 at=datetime.now(UTC) + timedelta(seconds=1.5))
    with contextlib.suppress(Crash):
        OutboxRelay(store, DiesAfterHandingOver(bus), signer).relay()

    restarted = StateStore(tmp_path / "state.db")
    OutboxRelay(restarted, bus, signer).relay()  # goes over the same rows again
    assert cancel(restarted, message_id)
    time.sleep(1.6)
    OutboxRelay(restarted, bus, signer).relay()
    bus.purge_expired()

    assert bus.peek("events", "cli") == [] and scheduled(bus) == 0
