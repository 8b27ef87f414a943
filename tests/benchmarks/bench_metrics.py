"""metrics-relay and bridge figures (issue 11).

1. Relay throughput: MetricsReported batches on the embedded bus → metrics-relay →
   MLflow's SQLite store, beside the naive way (one MlflowClient.log_metric call per
   point, into a run of the same store) measured in the same run. Targets: ≥ 5,000
   points/s and a ratio ≥ 20.
2. Bridge overhead: the numpy FedAvg recipe's round time on a real 2-site NVFlare
   federation with and without the bridge in the job, alternating. Target ≤ 5 %.
"""
from __future__ import annotations

import itertools
import re
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RELAY_TESTS = ROOT / "services" / "metrics-relay" / "tests"

SITES = ["site-1", "site-2"]
KEYS = [f"metric_{i}" for i in range(10)]
STEPS = 1000            # 2 sites x 10 keys x 1000 steps = 20,000 points through the relay
#: MLflow's log_batch cap; the bridge sends up to 5000 per message when a job logs a lot
POINTS_PER_BATCH = 1000
NAIVE_POINTS = 1500     # the naive path is slow; its rate is measured on a slice


def run(results) -> None:
    relay_rate, naive_rate, ceiling = _relay_throughput()
    results.add("metrics-relay points into MLflow (sqlite)", relay_rate, "points/s",
                target=">= 5000", ok=relay_rate >= 5000)
    # Context, not a target: MLflow's own ORM insert is most of the cost per point, so on a
    # busy machine the absolute rate follows the CPU share; this ratio shows what the bus,
    # the inbox and the batch ledger add on top of a bare log_batch into the same store.
    results.add("metrics-relay vs bare MlflowClient.log_batch", relay_rate, "points/s",
                baseline=ceiling, ratio=relay_rate / ceiling)
    ratio = relay_rate / naive_rate
    results.add("metrics-relay vs naive log_metric per point", relay_rate, "points/s",
                baseline=naive_rate, ratio=ratio, target=">= 20", ok=ratio >= 20)
    with_bridge, without = _round_times()
    overhead = with_bridge / without
    results.add("recipe round time with the bridge", with_bridge, "s", baseline=without,
                ratio=overhead, target="<= 1.05", ok=overhead <= 1.05)


# --- 1. relay throughput ------------------------------------------------------
def _relay_throughput() -> tuple[float, float]:
    from arcflare.bus import codec
    from arcflare.contracts.envelope import Envelope
    from arcflare.contracts.events import JobSubmitted, MetricPoint, MetricsReported
    from arcflare.metrics_relay.bootstrap import bootstrap
    from arcflare.metrics_relay.settings import MetricsRelaySettings
    from mlflow import MlflowClient

    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        settings = MetricsRelaySettings(data_dir=Path(tmp) / "data", log_level="WARNING")
        service = bootstrap(settings)
        try:
            bus = service.bus
            job = JobSubmitted(federation="bench", job_id="bench-job", name="bench", sites=SITES)
            bus.send("events", [codec.to_outgoing(Envelope.wrap(job))])
            service.drain(timeout=60)
            points = {site: [MetricPoint(key=k, value=s * 0.001 + i, step=s,
                                         timestamp_ms=1_700_000_000_000 + s)
                             for s in range(STEPS) for i, k in enumerate(KEYS)]
                      for site in SITES}
            batches = [MetricsReported(federation="bench", job_id="bench-job", site=site,
                                       points=pts[i:i + POINTS_PER_BATCH])
                       for site, pts in points.items()
                       for i in range(0, len(pts), POINTS_PER_BATCH)]
            bus.send("telemetry", [codec.to_outgoing(Envelope.wrap(b)) for b in batches])
            total = sum(len(p) for p in points.values())

            started = time.perf_counter()
            service.drain(timeout=600)
            relay_rate = total / (time.perf_counter() - started)

            client = MlflowClient(settings.resolved_tracking_uri())
            experiment = client.get_experiment_by_name("bench").experiment_id
            naive_run = client.create_run(experiment, run_name="naive").info.run_id
            sample = points[SITES[0]][:NAIVE_POINTS]
            started = time.perf_counter()
            for p in sample:
                client.log_metric(naive_run, p.key, p.value, p.timestamp_ms, p.step)
            naive_rate = len(sample) / (time.perf_counter() - started)
            ceiling = _bare_log_batch_rate(client, experiment, points[SITES[1]])
            print(f"   relay {relay_rate:,.0f} points/s; naive {naive_rate:,.0f} points/s; "
                  f"bare log_batch {ceiling:,.0f} points/s", flush=True)
            return relay_rate, naive_rate, ceiling
        finally:
            service.bus.close()


def _bare_log_batch_rate(client, experiment: str, points) -> float:
    """The same points straight into a run with MlflowClient.log_batch, 1000 per call."""
    from mlflow.entities import Metric

    run_id = client.create_run(experiment, run_name="bare-log-batch").info.run_id
    metrics = [Metric(p.key, p.value, p.timestamp_ms, p.step) for p in points]
    started = time.perf_counter()
    for i in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[i:i + 1000])
    return len(metrics) / (time.perf_counter() - started)


# --- 2. bridge overhead on round time -----------------------------------------
ROUNDS = 8
PAIRS = 2
_TASK_SENT = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*Sending task train to")


def _round_times() -> tuple[float, float]:
    sys.path.insert(0, str(RELAY_TESTS))
    from relay_flare import export_job, provision, run_job, running_federation

    with tempfile.TemporaryDirectory(prefix="bench-bridge-") as tmp:
        root = Path(tmp)
        data_dir = root / "data"
        prod = provision(root / "kits", "benchfed", SITES)
        bridge = {"federation": "benchfed", "data_dir": str(data_dir)}
        times: dict[bool, list[float]] = {True: [], False: []}
        with running_federation(prod, SITES):
            for n in range(PAIRS):
                for with_bridge in ((False, True) if n % 2 == 0 else (True, False)):
                    job = export_job(root / f"job-{n}-{with_bridge}", f"bench-{n}", ROUNDS,
                                     bridge if with_bridge else None)
                    job_id, meta = run_job(prod, job, root / "results")
                    if meta["status"] != "FINISHED:COMPLETED":
                        raise RuntimeError(f"benchmark job ended {meta['status']}")
                    times[with_bridge] += _round_durations(root / "results" / job_id)
        with_bridge, without = statistics.median(times[True]), statistics.median(times[False])
        print(f"   round time with bridge {with_bridge:.3f} s, without {without:.3f} s "
              f"({len(times[True])} rounds each)", flush=True)
        return with_bridge, without


def _round_durations(result: Path) -> list[float]:
    """Seconds between the server sending successive rounds' train tasks."""
    log = next(result.rglob("workspace/log.txt")).read_text()
    sent = [datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f")
            for m in map(_TASK_SENT.match, log.splitlines()) if m]
    return [(b - a).total_seconds() for a, b in itertools.pairwise(sent)]
