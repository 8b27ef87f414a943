"""BusBridge: the NVFlare server component that puts a job's metrics and lifecycle on the bus.

The job-controller adds it to every job's config_fed_server.json:

    {"id": "arcflare_bridge", "path": "arcflare.flare.bridge.BusBridge",
     "args": {"federation": "<federation>", "bus": "sqlite", "bus_file": "<the bus>"}}

(the bus the job-controller itself is on: the embedded broker's file, or
`"bus": "azure", "servicebus_namespace": ...` — never a secret; without them the server
process's own ARCFLARE_* variables), and the server kit's local/resources.json allows the
`arcflare.` class prefix. The bridge keeps its spool in the server's NVFlare workspace.

Client scripts log with `nvflare.client.tracking` writers; the clients'
ConvertToFedEvent widget turns those into `fed.analytix_log_stats` on the
server, which AnalyticsReceiver (NVFlare's own base, as used by MLflowReceiver)
hands to `save()`. Points become MetricsReported batches, lifecycle events
FlareEventObserved; both go out through a TelemetrySender, so NVFlare's threads
never wait on the bus.

This is the only module of the shared distribution that imports nvflare.
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import nvflare
from arcflare.contracts.envelope import Envelope
from arcflare.contracts.events import FlareEventObserved, MetricPoint
from arcflare.flare.batching import MetricsBatcher
from arcflare.flare.sender import TelemetrySender
from arcflare.flare.spool import Spool
from arcflare.trust.jws import Signer
from nvflare.apis.analytix import (
    ANALYTIC_EVENT_TYPE,
    AnalyticsData,
    AnalyticsDataType,
    LogWriterName,
)
from nvflare.apis.dxo import from_shareable
from nvflare.apis.event_type import EventType
from nvflare.apis.fl_constant import FLContextKey, ReservedKey
from nvflare.apis.fl_context import FLContext
from nvflare.apis.shareable import Shareable
from nvflare.app_common.widgets.streaming import AnalyticsReceiver

LIFECYCLE = {
    EventType.START_RUN: "job_started",
    EventType.END_RUN: "job_ended",
    EventType.CLIENT_DISCONNECTED: "client_disconnected",
    EventType.CLIENT_RECONNECTED: "client_reconnected",
    EventType.FATAL_SYSTEM_ERROR: "fatal_system_error",
}
_CLIENT_NAME_KEYS = {
    EventType.CLIENT_DISCONNECTED: FLContextKey.DISCONNECTED_CLIENT_NAME,
    EventType.CLIENT_RECONNECTED: FLContextKey.RECONNECTED_CLIENT_NAME,
}


def metric_points(data: AnalyticsData, timestamp_ms: int) -> tuple[list[MetricPoint], list[str]]:
    """The numeric, finite points of one analytics record, and the keys that were not."""
    if data.data_type == AnalyticsDataType.METRIC:
        values = {data.tag: data.value}
    elif data.data_type == AnalyticsDataType.METRICS:
        values = dict(data.value)
    else:  # params, tags, text, images: not metrics
        return [], []
    step = data.step or 0
    points, refused = [], []
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            refused.append(key)
            continue
        points.append(MetricPoint(key=key, value=float(value), step=step,
                                  timestamp_ms=timestamp_ms))
    return points, refused


class BusBridge(AnalyticsReceiver):
    def __init__(
        self,
        federation: str,
        data_dir: str | None = None,
        window_s: float = 0.5,
        buffer_capacity: int = 10_000,
        flush_timeout_s: float = 10.0,
        spool_dir: str | None = None,
        events: list[str] | None = None,
        **bus_settings: Any,
    ) -> None:
        """bus_settings: Settings overrides for the bus (bus, bus_file, servicebus_namespace);
        by default the server process's ARCFLARE_* env vars. data_dir: an ArcFlare data dir
        whose bus and spool to use instead; None: the spool in the server's workspace."""
        super().__init__(events=events or [f"fed.{ANALYTIC_EVENT_TYPE}", ANALYTIC_EVENT_TYPE])
        self.federation = federation
        self.data_dir = Path(data_dir) if data_dir else None
        self.window_s = window_s
        self.buffer_capacity = buffer_capacity
        self.flush_timeout_s = flush_timeout_s
        self.bus_settings = bus_settings
        self.spool_dir = Path(spool_dir) if spool_dir else (
            self.data_dir / "spool" if self.data_dir else None)
        self.spool_path: Path | None = None
        self.job_id: str | None = None
        self.job_name: str | None = None
        self._batcher: MetricsBatcher | None = None
        self._sender: TelemetrySender | None = None
        self._spool: Spool | None = None

    # --- NVFlare events ----------------------------------------------------------
    def handle_event(self, event_type: str, fl_ctx: FLContext) -> None:
        if event_type == EventType.END_RUN:
            self._observe(event_type, fl_ctx)  # before finalize() stops the sender
            super().handle_event(event_type, fl_ctx)
            return
        super().handle_event(event_type, fl_ctx)
        if event_type in LIFECYCLE:
            self._observe(event_type, fl_ctx)

    def initialize(self, fl_ctx: FLContext) -> None:
        self.job_id = fl_ctx.get_job_id()
        meta = fl_ctx.get_prop(ReservedKey.JOB_META) or {}
        self.job_name = meta.get("name") if isinstance(meta, dict) else None
        workspace = Path(fl_ctx.get_prop(FLContextKey.WORKSPACE_OBJECT).get_root_dir())
        self.spool_path = (self.spool_dir or workspace / "arcflare-spool") / \
            f"bridge-{self.federation}.db"
        self._spool = Spool(self.spool_path)
        self._batcher = MetricsBatcher(self.federation, window_s=self.window_s)
        self._sender = TelemetrySender(self._connect, self._spool, signer=self._signer(fl_ctx),
                                       collect=self._collect, capacity=self.buffer_capacity,
                                       log=self.logger)
        self._sender.start()
        self.log_info(fl_ctx, f"ArcFlare bridge on for federation {self.federation}, "
                              f"job {self.job_id}; spool {self.spool_path}")

    def save(self, fl_ctx: FLContext, shareable: Shareable, record_origin: str) -> None:
        data = AnalyticsData.from_dxo(from_shareable(shareable), receiver=LogWriterName.MLFLOW)
        if data is None or self._batcher is None:
            return
        points, refused = metric_points(data, int(time.time() * 1000))
        if refused:
            self.log_warning(fl_ctx, f"metric(s) {refused} from {record_origin} are not finite "
                                     "numbers; MLflow cannot store them, so they are not sent",
                             fire_event=False)
        if points:
            self._batcher.add(self.job_id or fl_ctx.get_job_id(), record_origin, points)

    def finalize(self, fl_ctx: FLContext) -> None:
        if self._sender is None:
            return
        delivered = self._sender.flush(self.flush_timeout_s)
        left = self._sender.stop(timeout=1.0 if delivered else 0.1)
        if left:
            self.log_warning(fl_ctx, f"{left} telemetry message(s) wait in {self.spool_path}; "
                                     "the next job of this federation replays them",
                             fire_event=False)
        if not self._sender.running:  # a send still stuck on the bus may yet spool its batch
            self._spool.close()

    # --- helpers -----------------------------------------------------------------
    def _observe(self, event_type: str, fl_ctx: FLContext) -> None:
        if self._sender is None:
            return
        site = fl_ctx.get_prop(_CLIENT_NAME_KEYS[event_type]) if event_type in _CLIENT_NAME_KEYS \
            else None
        detail: dict[str, Any] = {"nvflare_event": event_type}
        if event_type == EventType.START_RUN:
            detail.update(job_name=self.job_name, nvflare_version=nvflare.__version__)
            # Set when the server itself runs as an Azure ML job: that job's MLflow run
            # can be the parent run of this NVFlare job (metrics-relay parent_run=server_job).
            if os.environ.get("MLFLOW_RUN_ID"):
                detail["mlflow_run_id"] = os.environ["MLFLOW_RUN_ID"]
        if event_type == EventType.FATAL_SYSTEM_ERROR:
            detail["reason"] = str(fl_ctx.get_prop(FLContextKey.EVENT_DATA, ""))[:1000]
        event = FlareEventObserved(federation=self.federation, job_id=self.job_id,
                                   event=LIFECYCLE[event_type], site=site, detail=detail)
        self._sender.offer(Envelope.wrap(event))

    def _collect(self, everything: bool) -> list[Envelope]:
        batches = self._batcher.take(everything=everything) if self._batcher else []
        return [Envelope.wrap(b, message_id=b.batch_id) for b in batches]

    def _settings(self):
        from arcflare.runtime.settings import Settings

        if self.data_dir is None:
            return Settings(**self.bus_settings)
        return Settings(**{**self.bus_settings, "data_dir": self.data_dir})

    def _connect(self):
        from arcflare.bus import connect

        return connect(self._settings())

    def _signer(self, fl_ctx: FLContext) -> Signer:
        """The bridge signs as bridge:<federation>: ARCFLARE_IDENTITY_* of the server process
        when set, else the identity the provisioner put into the server's kit."""
        from arcflare.runtime.identity import load_identity
        from arcflare.trust.kits import kit_identity

        workspace = fl_ctx.get_prop(FLContextKey.WORKSPACE_OBJECT)
        signer = Signer(load_identity(self._settings(), kit_identity(Path(workspace.get_root_dir()))))
        if signer.principal.id != f"bridge:{self.federation}":
            raise RuntimeError(f"the bridge of {self.federation} would sign as "
                               f"{signer.principal.id}; its kit carries another identity")
        return signer
