"""The bridge starts off the thread that starts the job's workflow: START_RUN returns before
the identity, spool and sender are ready, and what NVFlare hands over meanwhile goes out in
order once they are (the bus is a recorder on purpose: this is the code around it; the real
broker and NVFlare run in the metrics-relay bridge tests)."""
from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("nvflare")

from arcflare.contracts.events import FlareEventObserved, MetricsReported
from arcflare.flare.bridge import BusBridge
from nvflare.apis.analytix import AnalyticsData, AnalyticsDataType, LogWriterName
from nvflare.apis.event_type import EventType
from nvflare.apis.fl_constant import FLContextKey, ReservedKey
from nvflare.apis.fl_context import FLContext

from tests.support.signing import signer_for


class Workspace:
    def __init__(self, root) -> None:
        self.root = root

    def get_root_dir(self) -> str:
        return str(self.root)


class RecordingBus:
    def __init__(self) -> None:
        self.sent: list = []

    def send(self, entity, messages) -> None:
        self.sent.extend(messages)

    def close(self) -> None:
        pass


def context(tmp_path) -> FLContext:
    fl_ctx = FLContext()
    fl_ctx.set_prop(ReservedKey.RUN_NUM, "job-1", private=False, sticky=True)
    fl_ctx.set_prop(ReservedKey.JOB_META, {"name": "scale"}, private=False, sticky=True)
    fl_ctx.set_prop(FLContextKey.WORKSPACE_OBJECT, Workspace(tmp_path), private=True, sticky=True)
    return fl_ctx


def metrics(step: int) -> AnalyticsData:
    data = AnalyticsData("m", {"acc": 0.5 + step / 10, "loss": float("nan")},
                         AnalyticsDataType.METRICS, LogWriterName.MLFLOW, global_step=step)
    return AnalyticsData.from_dxo(data.to_dxo(), receiver=LogWriterName.MLFLOW)


@pytest.fixture
def slow_bridge(tmp_path, monkeypatch):
    """A bridge whose identity takes until `proceed` is set to load."""
    proceed = threading.Event()
    bus = RecordingBus()
    signer = signer_for(tmp_path / "ids", "bridge:fed")
    bridge = BusBridge("fed", spool_dir=str(tmp_path / "spool"), window_s=0.01)
    monkeypatch.setattr(bridge, "_signer", lambda workspace: proceed.wait(10) and signer)
    monkeypatch.setattr(bridge, "_connect", lambda: bus)
    return bridge, proceed, bus


def received(bus: RecordingBus) -> list[tuple[str, object]]:
    out = []
    for message in bus.sent:
        if message.subject == "FlareEventObserved":
            out.append(("event", FlareEventObserved.model_validate_json(message.body).event))
        else:
            report = MetricsReported.model_validate_json(message.body)
            out.extend(("point", (p.key, p.step)) for p in report.points)
    return out


def test_start_run_returns_before_the_sender_is_ready_and_nothing_is_lost(slow_bridge, tmp_path):
    bridge, proceed, bus = slow_bridge
    fl_ctx = context(tmp_path)

    started = time.monotonic()
    bridge.handle_event(EventType.START_RUN, fl_ctx)
    returned_after = time.monotonic() - started
    bridge.save(fl_ctx, metrics(0).to_dxo().to_shareable(), "site-1")  # meanwhile
    proceed.set()
    bridge.save(fl_ctx, metrics(1).to_dxo().to_shareable(), "site-1")
    bridge.handle_event(EventType.END_RUN, fl_ctx)

    assert returned_after < 1.0  # it did not wait for the identity (10 s at most)
    # the start first, then what came meanwhile (a metric batch leaves after its window)
    assert received(bus)[0] == ("event", "job_started")
    assert [r for r in received(bus) if r[0] == "event"] == [("event", "job_started"),
                                                            ("event", "job_ended")]
    assert [r for r in received(bus) if r[0] == "point"] == [("point", ("acc", 0)),
                                                            ("point", ("acc", 1))]


def test_a_job_that_ends_while_the_bridge_starts_still_reports_its_start_and_end(slow_bridge,
                                                                               tmp_path):
    bridge, proceed, bus = slow_bridge
    fl_ctx = context(tmp_path)
    bridge.handle_event(EventType.START_RUN, fl_ctx)

    threading.Timer(0.3, proceed.set).start()
    bridge.handle_event(EventType.END_RUN, fl_ctx)  # waits for the start, then flushes

    assert received(bus) == [("event", "job_started"), ("event", "job_ended")]


def test_a_bridge_that_would_sign_as_another_is_off_and_the_job_goes_on(tmp_path, monkeypatch):
    from arcflare.trust import local

    other = local.bridge_identity(tmp_path / "ids", "another")  # a real identity, not fed's
    monkeypatch.setenv("ARCFLARE_IDENTITY_CERT", str(other.cert))
    monkeypatch.setenv("ARCFLARE_IDENTITY_KEY", str(other.key))
    bus = RecordingBus()
    bridge = BusBridge("fed", spool_dir=str(tmp_path / "spool"))
    monkeypatch.setattr(bridge, "_connect", lambda: bus)
    fl_ctx = context(tmp_path)

    bridge.handle_event(EventType.START_RUN, fl_ctx)
    bridge.save(fl_ctx, metrics(0).to_dxo().to_shareable(), "site-1")
    bridge.handle_event(EventType.END_RUN, fl_ctx)

    assert bus.sent == [] and bridge._sender is None
