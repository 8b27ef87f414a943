"""Wires the ledger: its state DB, the events and telemetry consumers, the HTTP API and the
console, and the live feed from the one to the other."""
from __future__ import annotations

import threading
from typing import Any

from arcflare.bus import connect
from arcflare.ledger import fleet_metrics
from arcflare.ledger.handlers import EVENT_HANDLERS, TELEMETRY_HANDLERS
from arcflare.ledger.http_api import LedgerApi
from arcflare.ledger.live import LiveFeed
from arcflare.ledger.projections import Retention
from arcflare.ledger.settings import LedgerSettings
from arcflare.ledger.tables import MIGRATIONS
from arcflare.runtime import Consumer, Service, StateStore

PORT_FILE = "ledger.port"


def bootstrap(settings: LedgerSettings | None = None, **overrides: Any) -> Service:
    s = settings or LedgerSettings()
    given_bus = overrides.pop("bus", None)
    bus = given_bus or connect(s)
    state = overrides.pop("state", None) or StateStore(s.data_dir / "ledger.db",
                                                       migrations=MIGRATIONS)
    retention = Retention(s.log_tails_per_site, s.flare_events_per_federation)
    live = LiveFeed()
    fleet_metrics.register(state.path)  # the fleet gauges on the API's /metrics
    holder: dict[str, Service] = {}

    def serve_api(stop: threading.Event) -> None:
        """The API runs while the service runs; its port doubles as the health port."""
        api = LedgerApi(state.path, s.ledger_host, s.ledger_port, s.run_dir() / PORT_FILE,
                        readiness=lambda: holder["service"].readiness(), settings=s, live=live)
        try:
            stop.wait()
        finally:
            api.close()

    service = Service(
        name="ledger",
        # the API answers /healthz and /readyz and owns run/ledger.port
        settings=s.model_copy(update={"health_port": None}),
        bus=bus,
        owns_bus=given_bus is None,
        state=state,
        consumers=[
            Consumer("events", subscription="ledger", handlers=EVENT_HANDLERS),
            Consumer("telemetry", subscription="ledger", handlers=TELEMETRY_HANDLERS),
        ],
        dependencies={"retention": retention, "live": live, **overrides},
        background=[serve_api],
    )
    holder["service"] = service
    return service
