"""metrics-relay and bridge figures (issue 11).

1. Relay throughput: MetricsReported batches of 1000 points on the embedded bus →
   metrics-relay → MLflow's SQLite store, beside bare MlflowClient.log_batch calls of
   the same 1000 points into a run of the same store (target: ratio >= 0.9), alternating,
   best run of each side; and >= 5,000 points/s. The naive way (one log_metric call per
   point) is reported as context, without a target.
2. Bridge overhead: the numpy FedAvg recipe's round time on a real 2-site NVFlare
   federation with and without the bridge in the job, alternating; each job's median
   round time, best job of each side. Target <= 5 %.
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

from tests.benchmarks.noise import alternate, runs
from tests.support.signing import identities_in, signer_for

ROOT = Path(__file__).resolve().parents[2]
RELAY_TESTS = ROOT / "services" / "metrics-relay" / "tests"

SITES = ["site-1", "site-2"]
KEYS = [f"metric_{i}" for i in range(10)]
STEPS = 1000            # 2 sites x 10 keys x 1000 steps = 20,000 points per relay run
#: MLflow's log_batch cap; the bridge sends up to 5000 per message when a job logs a lot
POINTS_PER_BATCH = 1000
NAIVE_POINTS = 1500     # the naive path is slow; its rate is measured on a slice


def run(results) -> None:
    rates, naive_rate = _relay_throughput()
    results.compare("metrics.relay_vs_bare_log_batch", rates["relay"],
                            rates["bare_log_batch"], "points/s", target=">= 0.9",
                            higher_is_better=True,
                            note=f"{POINTS_PER_BATCH} points per message and per log_batch call")
    relay_rate = max(rates["relay"])
    results.add("metrics.relay_points_into_mlflow", relay_rate, "points/s",
                target=">= 5000", samples=rates["relay"])
    # context, no target: what batching buys over the naive one-call-per-point way
    results.add("metrics.relay_vs_naive_log_metric", relay_rate, "points/s",
                baseline=naive_rate)
    times = _round_times()
    results.compare("metrics.bridge_round_time", times["with_bridge"],
                    times["without_bridge"], "s", target="<= 1.05",
                    note=f"median round of each {ROUNDS}-round job on {len(SITES)} sites")


# --- 1. relay throughput ------------------------------------------------------
def _points(site_offset: float = 0.0) -> list:
    from arcflare.contracts.events import MetricPoint

    return [MetricPoint(key=k, value=s * 0.001 + i + site_offset, step=s,
                        timestamp_ms=1_700_000_000_000 + s)
            for s in range(STEPS) for i, k in enumerate(KEYS)]


def _relay_throughput() -> tuple[dict[str, list[float]], float]:
    from arcflare.bus import codec
    from arcflare.contracts.envelope import Envelope
    from arcflare.contracts.events import JobSubmitted, MetricsReported
    from arcflare.metrics_relay.bootstrap import bootstrap
    from arcflare.metrics_relay.settings import MetricsRelaySettings
    from mlflow import MlflowClient

    points = {site: _points(n) for n, site in enumerate(SITES)}
    total = sum(len(p) for p in points.values())
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        data = identities_in(Path(tmp) / "data")
        settings = MetricsRelaySettings(data_dir=data, log_level="WARNING")
        service = bootstrap(settings)
        # signed by whoever may say it: the job-controller, and the federation's bridge
        job_controller = signer_for(data, "service:job-controller")
        bridge = signer_for(data, "bridge:bench")
        try:
            bus = service.bus

            def relay(i: int) -> float:
                job = JobSubmitted(federation="bench", job_id=f"bench-job-{i}", name="bench",
                                   sites=SITES)
                bus.send("events", [codec.to_outgoing(Envelope.wrap(job),
                                                      signer=job_controller)])
                service.drain(timeout=60)
                batches = [MetricsReported(federation="bench", job_id=f"bench-job-{i}",
                                           site=site, points=pts[k:k + POINTS_PER_BATCH])
                           for site, pts in points.items()
                           for k in range(0, len(pts), POINTS_PER_BATCH)]
                bus.send("telemetry", [codec.to_outgoing(Envelope.wrap(b), signer=bridge)
                                       for b in batches])
                started = time.perf_counter()
                service.drain(timeout=600)
                return total / (time.perf_counter() - started)

            relay(-1)  # MLflow's experiment, tables and caches: neither side pays them
            client = MlflowClient(settings.resolved_tracking_uri())
            experiment = client.get_experiment_by_name("bench").experiment_id
            rates = alternate(
                runs(3, "metrics"), relay=relay,
                bare_log_batch=lambda i: _bare_log_batch_rate(client, experiment, points))
            naive_run = client.create_run(experiment, run_name="naive").info.run_id
            sample = points[SITES[0]][:NAIVE_POINTS]
            started = time.perf_counter()
            for p in sample:
                client.log_metric(naive_run, p.key, p.value, p.timestamp_ms, p.step)
            naive_rate = len(sample) / (time.perf_counter() - started)
            print(f"   naive log_metric {naive_rate:,.0f} points/s", flush=True)
            return rates, naive_rate
        finally:
            service.bus.close()


def _bare_log_batch_rate(client, experiment: str, points: dict[str, list]) -> float:
    """The same points straight into one run per site with MlflowClient.log_batch, in
    calls of POINTS_PER_BATCH, as the relay writes them."""
    from mlflow.entities import Metric

    metrics = {site: [Metric(p.key, p.value, p.timestamp_ms, p.step) for p in pts]
               for site, pts in points.items()}
    run_ids = {site: client.create_run(experiment, run_name=f"bare-{site}").info.run_id
               for site in metrics}
    started = time.perf_counter()
    for site, site_metrics in metrics.items():
        for i in range(0, len(site_metrics), POINTS_PER_BATCH):
            client.log_batch(run_ids[site], metrics=site_metrics[i:i + POINTS_PER_BATCH])
    return sum(len(m) for m in metrics.values()) / (time.perf_counter() - started)


# --- 2. bridge overhead on round time -----------------------------------------
ROUNDS = 8
_TASK_SENT = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*Sending task train to")


def _round_times() -> dict[str, list[float]]:
    """Per side, each job's median round time."""
    sys.path.insert(0, str(RELAY_TESTS))
    from relay_flare import export_job, provision, run_job, running_federation

    with tempfile.TemporaryDirectory(prefix="bench-bridge-") as tmp:
        root = Path(tmp)
        data_dir = root / "data"
        prod = provision(root / "kits", "benchfed", SITES, identities_from=data_dir)
        bridge = {"federation": "benchfed", "data_dir": str(data_dir)}

        def job_round_time(name: str, with_bridge: bool) -> float:
            job = export_job(root / name, name, ROUNDS, bridge if with_bridge else None)
            job_id, meta = run_job(prod, job, root / "results")
            if meta["status"] != "FINISHED:COMPLETED":
                raise RuntimeError(f"benchmark job ended {meta['status']}")
            return statistics.median(_round_durations(root / "results" / job_id))

        with running_federation(prod, SITES):
            return alternate(
                runs(2, "metrics"),
                without_bridge=lambda i: job_round_time(f"plain-{i}", False),
                with_bridge=lambda i: job_round_time(f"bridged-{i}", True))


def _round_durations(result: Path) -> list[float]:
    """Seconds between the server sending successive rounds' train tasks."""
    log = next(result.rglob("workspace/log.txt")).read_text()
    sent = [datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f")
            for m in map(_TASK_SENT.match, log.splitlines()) if m]
    return [(b - a).total_seconds() for a, b in itertools.pairwise(sent)]
