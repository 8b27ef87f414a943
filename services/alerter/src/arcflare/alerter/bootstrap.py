"""Wires the alerter: rules (checked at start), the events consumer, the watchers."""
from __future__ import annotations

import os
from typing import Any

from arcflare.alerter.deliveries import workers
from arcflare.alerter.engine import AlertEngine
from arcflare.alerter.handlers import EVENT_HANDLERS, TELEMETRY_HANDLERS, pending_watcher
from arcflare.alerter.loader import load_rules
from arcflare.alerter.settings import AlerterSettings
from arcflare.alerter.tables import MIGRATIONS
from arcflare.bus import connect
from arcflare.runtime import Consumer, Service, StateStore, get_logger

log = get_logger("arcflare.alerter")


def bootstrap(settings: AlerterSettings | None = None, **overrides: Any) -> Service:
    """Raises RulesFileError (line and problem) for an invalid rules file."""
    s = settings or AlerterSettings()
    book = overrides.pop("rule_book", None) or load_rules(s.alert_rules_file)
    given_bus = overrides.pop("bus", None)
    bus = given_bus or connect(s)
    state = overrides.pop("state", None) or StateStore(s.data_dir / "alerter.db",
                                                       migrations=MIGRATIONS)
    engine = AlertEngine(book)
    for sink in book.all_sinks():
        if sink.url_env and not os.environ.get(sink.url_env):
            log.warning("webhook URL variable is not set; its deliveries will fail until it is",
                        sink=sink.name, variable=sink.url_env)
    delivery_workers = overrides.pop("delivery_workers", None) or workers(book, state)
    return Service(
        name="alerter",
        settings=s,
        bus=bus,
        owns_bus=given_bus is None,
        state=state,
        consumers=[Consumer("events", subscription="alerter", handlers=EVENT_HANDLERS),
                   Consumer("telemetry", subscription="alerter", handlers=TELEMETRY_HANDLERS)],
        dependencies={"engine": engine, "delivery_workers": delivery_workers, **overrides},
        background=[
            pending_watcher(engine, state, delivery_workers, s.alert_check_interval_s),
            *delivery_workers,
        ],
        on_stop=[w.close for w in delivery_workers],
    )
