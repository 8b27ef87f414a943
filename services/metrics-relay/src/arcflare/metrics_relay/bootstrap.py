"""Wires the metrics-relay: MLflow tracking, its state DB, and two subscriptions."""
from __future__ import annotations

from arcflare.artifacts import ArtifactStore, open_artifact_store
from arcflare.bus import connect
from arcflare.metrics_relay.adapters.tracking import MlflowTracking, Tracking
from arcflare.metrics_relay.handlers import EVENT_HANDLERS, TELEMETRY_HANDLERS
from arcflare.metrics_relay.job_runs import JobRuns
from arcflare.metrics_relay.settings import MetricsRelaySettings
from arcflare.metrics_relay.tables import MIGRATIONS
from arcflare.runtime import Consumer, Service, StateStore


def bootstrap(settings: MetricsRelaySettings | None = None, *, bus=None,
              tracking: Tracking | None = None, artifacts: ArtifactStore | None = None) -> Service:
    s = settings or MetricsRelaySettings()
    s.data_dir.mkdir(parents=True, exist_ok=True)
    tracking = tracking or MlflowTracking(s.resolved_tracking_uri(), s.registry_uri,
                                          s.resolved_artifact_root())
    return Service(
        name="metrics-relay",
        settings=s,
        bus=bus or connect(s),
        owns_bus=bus is None,
        state=StateStore(s.data_dir / "metrics-relay.db", migrations=MIGRATIONS),
        consumers=[
            Consumer("telemetry", subscription="metrics-relay", handlers=TELEMETRY_HANDLERS),
            Consumer("events", subscription="metrics-relay", handlers=EVENT_HANDLERS),
        ],
        dependencies={"tracking": tracking, "job_runs": JobRuns(tracking, s),
                      "artifacts": artifacts or open_artifact_store(s)},
    )
