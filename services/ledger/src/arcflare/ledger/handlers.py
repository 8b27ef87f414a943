"""The ledger records every event and the telemetry summaries it subscribes to."""
from __future__ import annotations

from functools import partial

from arcflare.contracts.base import Message, message_types
from arcflare.contracts.events import Event
from arcflare.contracts.senders import topics_of
from arcflare.ledger.console_model import record_for_console
from arcflare.ledger.live import Change, LiveFeed
from arcflare.ledger.projections import Retention, record
from arcflare.runtime import UnitOfWork


def record_event(event: Message, *, uow: UnitOfWork, retention: Retention,
                 live: LiveFeed) -> None:
    assert uow.envelope is not None
    db = uow.write()
    record(db, uow.envelope, retention)
    record_for_console(db, uow.envelope, event)
    # open consoles re-read what changed, so they are told only once it is committed
    uow.after_commit(partial(live.announce, Change.of(uow.envelope)))


EVENT_HANDLERS = {
    kind: record_event
    for kind in message_types().values()
    if issubclass(kind, Event) and kind.channel == "events"
}
TELEMETRY_HANDLERS = {
    kind: record_event
    for kind in message_types().values()
    if issubclass(kind, Event) and "telemetry" in topics_of(kind.__name__, kind.channel)
}
