"""Every event is checked against the rules; alerts are raised in the same transaction."""
from __future__ import annotations

import threading
from collections.abc import Callable

from arcflare.alerter.deliveries import DeliveryWorker, raise_alert, utcnow
from arcflare.alerter.engine import AlertEngine, stamp
from arcflare.contracts.base import Message, message_types
from arcflare.contracts.events import Event
from arcflare.contracts.senders import topics_of
from arcflare.runtime import StateStore, UnitOfWork


def evaluate_event(event: Message, *, uow: UnitOfWork, engine: AlertEngine,
                   delivery_workers: list[DeliveryWorker]) -> None:
    assert uow.envelope is not None
    alerts = engine.observe(uow.write(), uow.envelope)
    now = utcnow()
    for alert in alerts:
        raise_alert(uow, alert, now)
    if alerts:
        for worker in delivery_workers:
            worker.wake.set()


EVENT_HANDLERS = {
    kind: evaluate_event
    for kind in message_types().values()
    if issubclass(kind, Event) and kind.channel == "events" and kind.__name__ != "AlertRaised"
}
#: what site agents say travels on telemetry (their health changes, restarts, refusals)
TELEMETRY_HANDLERS = {
    kind: evaluate_event
    for kind in EVENT_HANDLERS
    if "telemetry" in topics_of(kind.__name__, kind.channel)
}


def pending_watcher(engine: AlertEngine, state: StateStore,
                    delivery_workers: list[DeliveryWorker], interval_s: float = 1.0,
                    clock: Callable = utcnow) -> Callable[[threading.Event], None]:
    """The background check that raises for-duration alerts once they fall due."""

    def watch_pending(stop: threading.Event) -> None:
        while not stop.wait(interval_s):
            raise_due(engine, state, delivery_workers, clock())

    return watch_pending


def raise_due(engine: AlertEngine, state: StateStore, delivery_workers: list[DeliveryWorker],
              now) -> int:
    with state.connect() as db:  # a read first: no write lock every tick when nothing is due
        if not db.execute("SELECT 1 FROM pending WHERE due_at <= ? LIMIT 1",
                          (stamp(now),)).fetchone():
            return 0
    with state.unit_of_work() as uow:
        alerts = engine.due(uow.write(), now)
        for alert in alerts:
            raise_alert(uow, alert, now)
    for worker in delivery_workers if alerts else ():
        worker.wake.set()
    return len(alerts)
