"""The ledger records every event and the telemetry summaries it subscribes to."""
from __future__ import annotations

from arcflare.contracts.base import Message, message_types
from arcflare.contracts.events import Event
from arcflare.contracts.senders import topics_of
from arcflare.ledger.projections import Retention, record
from arcflare.runtime import UnitOfWork


def record_event(event: Message, *, uow: UnitOfWork, retention: Retention) -> None:
    assert uow.envelope is not None
    record(uow.write(), uow.envelope, retention)


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
