"""The bridge's delivery path: buffer, batching, spool and replay (fake bus on purpose:
this is the code around the bus; the real broker runs in the metrics-relay NVFlare tests)."""
from __future__ import annotations

import threading

from arcflare.bus.port import BusUnavailable
from arcflare.contracts.envelope import Envelope
from arcflare.contracts.events import MetricPoint, MetricsReported
from arcflare.flare.batching import MetricsBatcher
from arcflare.flare.sender import TelemetrySender
from arcflare.flare.spool import Spool

from tests.support.signing import signer_for


class FlakyBus:
    """Records what is sent; raises BusUnavailable while `down` is set."""

    def __init__(self) -> None:
        self.down = threading.Event()
        self.sent: dict[str, list] = {}

    def send(self, entity, messages):
        if self.down.is_set():
            raise BusUnavailable("bus is down")
        for m in messages:
            self.sent.setdefault(entity, []).append(m)

    def close(self):
        pass


def _points(n: int, step: int = 0) -> list[MetricPoint]:
    return [MetricPoint(key=f"k{i}", value=float(i), step=step, timestamp_ms=1) for i in range(n)]


def _received(bus: FlakyBus) -> list[MetricsReported]:
    return [MetricsReported.model_validate_json(m.body) for m in bus.sent.get("telemetry", [])]


def _sender(tmp_path, bus, batcher=None, **kw) -> TelemetrySender:
    def collect(everything):
        if batcher is None:
            return []
        return [Envelope.wrap(b, message_id=b.batch_id) for b in batcher.take(everything=everything)]

    return TelemetrySender(lambda: bus, Spool(tmp_path / "spool.db"), collect=collect,
                           signer=signer_for(tmp_path / "ids", "bridge:fed"),
                           retry_initial_s=0.05, retry_max_s=0.2, tick_s=0.02, **kw)


def test_batcher_groups_points_per_job_and_site_and_splits_at_the_contract_cap():
    batcher = MetricsBatcher("fed", window_s=60, max_points=3)
    batcher.add("job1", "site-1", _points(2))
    batcher.add("job1", "site-2", _points(1))
    batcher.add("job1", "site-1", _points(2, step=1))  # reaches the cap: closed at once

    full = batcher.take()
    rest = batcher.take(everything=True)

    assert [(m.site, len(m.points)) for m in full] == [("site-1", 3), ("site-1", 1)]
    assert [(m.site, len(m.points)) for m in rest] == [("site-2", 1)]
    assert len({m.batch_id for m in full + rest}) == 3


def test_everything_offered_while_the_bus_is_down_arrives_once_it_returns(tmp_path):
    bus = FlakyBus()
    batcher = MetricsBatcher("fed", window_s=0.01)
    sender = _sender(tmp_path, bus, batcher, capacity=5)
    bus.down.set()
    sender.start()
    try:
        for step in range(40):
            batcher.add("job1", "site-1", _points(3, step=step))
            sender.offer(Envelope.wrap(MetricsReported(
                federation="fed", job_id="job1", site="site-2", points=_points(1, step=step),
                batch_id=f"b{step}"), message_id=f"b{step}"))
        bus.down.clear()

        assert sender.flush(timeout=30)
    finally:
        sender.stop(timeout=5)

    got = _received(bus)
    steps = sorted((m.site, p.step, p.key) for m in got for p in m.points)
    expected = sorted([("site-1", s, f"k{i}") for s in range(40) for i in range(3)]
                      + [("site-2", s, "k0") for s in range(40)])
    assert sorted(set(steps)) == expected


def test_offer_never_waits_for_a_hanging_bus(tmp_path):
    release = threading.Event()

    class HangingBus(FlakyBus):
        def send(self, entity, messages):
            release.wait(30)
            super().send(entity, messages)

    bus = HangingBus()
    sender = _sender(tmp_path, bus, capacity=2)
    sender.start()
    try:
        for i in range(20):  # 2 buffered, one batch in flight, the rest spooled on disk
            sender.offer(Envelope.wrap(MetricsReported(
                federation="fed", job_id="j", site="s", points=_points(1, i)), message_id=f"m{i}"))
        spooled = len(sender._spool)
        release.set()
        assert sender.flush(timeout=30)
    finally:
        release.set()
        sender.stop(timeout=5)

    assert spooled > 0
    assert sorted({m.message_id for m in bus.sent["telemetry"]}) == sorted(f"m{i}" for i in range(20))


def test_what_stop_could_not_deliver_stays_spooled_for_the_next_sender(tmp_path):
    bus = FlakyBus()
    bus.down.set()
    first = _sender(tmp_path, bus)
    first.start()
    first.offer(Envelope.wrap(MetricsReported(federation="fed", job_id="j", site="s",
                                              points=_points(2)), message_id="left-behind"))
    left = first.stop(timeout=2)
    bus.down.clear()

    second = _sender(tmp_path, bus)
    second.start()
    try:
        assert second.flush(timeout=30)
    finally:
        second.stop(timeout=5)

    assert left == 1
    assert [m.message_id for m in bus.sent["telemetry"]] == ["left-behind"]
