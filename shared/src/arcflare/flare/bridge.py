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
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nvflare
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

if TYPE_CHECKING:
    from arcflare.contracts.events import MetricPoint
    from arcflare.flare.batching import MetricsBatcher
    from arcflare.flare.sender import TelemetrySender
    from arcflare.flare.spool import Spool
    from arcflare.trust.jws import Signer

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
    from arcflare.contracts.events import MetricPoint

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
        self._starting: threading.Thread | None = None
        self._lock = threading.Lock()
        #: what NVFlare handed over while the sender was starting, in order (None once it
        #: runs, or once the bridge is off)
        self._early: list[Callable[[], None]] | None = []

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
        """At START_RUN, on the thread that then starts the job's workflow: only what costs
        nothing here. The spool, the identity and the sender, and the imports they need
        (pydantic models, cryptography: ~0.3 s of CPU), start on a thread of their own. The
        server's job process gets a small share of a machine busy starting a federation's
        clients (one in 21 at 20 sites on one machine), and those 0.3 s held round 0 back
        by 2-4 s. What arrives meanwhile waits in order and goes out once the sender runs."""
        self.job_id = fl_ctx.get_job_id()
        meta = fl_ctx.get_prop(ReservedKey.JOB_META) or {}
        self.job_name = meta.get("name") if isinstance(meta, dict) else None
        workspace = Path(fl_ctx.get_prop(FLContextKey.WORKSPACE_OBJECT).get_root_dir())
        self.spool_path = (self.spool_dir or workspace / "arcflare-spool") / \
            f"bridge-{self.federation}.db"
        self._starting = threading.Thread(target=self._start, args=(workspace,),
                                          name="arcflare-bridge-start", daemon=True)
        self._starting.start()

    def _start(self, workspace: Path) -> None:
        from arcflare.flare.batching import MetricsBatcher
        from arcflare.flare.sender import TelemetrySender
        from arcflare.flare.spool import Spool

        try:
            signer = self._signer(workspace)
            spool = Spool(self.spool_path)
        except Exception as exc:  # noqa: BLE001 - the job trains on; nothing is sent for it
            self.logger.error("ArcFlare bridge off for federation %s, job %s: %s",
                              self.federation, self.job_id, exc)
            with self._lock:
                self._early = None
            return
        batcher = MetricsBatcher(self.federation, window_s=self.window_s)
        sender = TelemetrySender(self._connect, spool, signer=signer, collect=self._collect,
                                 capacity=self.buffer_capacity, log=self.logger)
        with self._lock:  # handed over under the lock: nothing newer can overtake it
            self._spool, self._batcher, self._sender = spool, batcher, sender
            for action in self._early or []:
                action()
            self._early = None
        sender.start()
        self.logger.info("ArcFlare bridge on for federation %s, job %s; spool %s",
                         self.federation, self.job_id, self.spool_path)

    def _when_ready(self, action: Callable[[], None]) -> None:
        """Now once the sender runs; queued, in order, while it starts; dropped when the
        bridge is off."""
        with self._lock:
            if self._early is not None:
                self._early.append(action)
                return
        if self._sender is not None:
            action()

    def save(self, fl_ctx: FLContext, shareable: Shareable, record_origin: str) -> None:
        data = AnalyticsData.from_dxo(from_shareable(shareable), receiver=LogWriterName.MLFLOW)
        if data is not None:
            self._when_ready(partial(self._add_points, self.job_id or fl_ctx.get_job_id(),
                                     record_origin, data, int(time.time() * 1000)))

    def _add_points(self, job_id: str, origin: str, data: AnalyticsData,
                    timestamp_ms: int) -> None:
        points, refused = metric_points(data, timestamp_ms)
        if refused:
            self.logger.warning("metric(s) %s from %s are not finite numbers; MLflow cannot "
                                "store them, so they are not sent", refused, origin)
        if points:
            self._batcher.add(job_id, origin, points)

    def finalize(self, fl_ctx: FLContext) -> None:
        if self._starting is not None:
            self._starting.join(self.flush_timeout_s)  # a short job can end while it starts
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
        self._when_ready(partial(self._offer_event, LIFECYCLE[event_type], site, detail,
                                 datetime.now(UTC)))

    def _offer_event(self, event: str, site: str | None, detail: dict[str, Any],
                     when: datetime) -> None:
        from arcflare.contracts.envelope import Envelope
        from arcflare.contracts.events import FlareEventObserved

        observed = FlareEventObserved(federation=self.federation, job_id=self.job_id,
                                      event=event, site=site, detail=detail)
        self._sender.offer(Envelope.wrap(observed).model_copy(update={"occurred_at": when}))

    def _collect(self, everything: bool) -> list:
        from arcflare.contracts.envelope import Envelope

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

    def _signer(self, workspace: Path) -> Signer:
        """The bridge signs as bridge:<federation>: ARCFLARE_IDENTITY_* of the server process
        when set, else the identity the provisioner put into the server's kit."""
        from arcflare.runtime.identity import load_identity
        from arcflare.trust.jws import Signer
        from arcflare.trust.kits import kit_identity

        signer = Signer(load_identity(self._settings(), kit_identity(workspace)))
        if signer.principal.id != f"bridge:{self.federation}":
            raise RuntimeError(f"the bridge of {self.federation} would sign as "
                               f"{signer.principal.id}; its kit carries another identity")
        return signer
