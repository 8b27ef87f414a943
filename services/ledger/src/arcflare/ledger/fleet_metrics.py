"""The fleet as Prometheus gauges, read from the ledger's read model when /metrics is scraped.

    arcflare_fleet_sites{federation, health}                          sites by their agent's health
    arcflare_fleet_certificate_expiry_timestamp_seconds{federation, participant, kind}
                                     when each certificate expires (days left: (x - time()) / 86400)
    arcflare_fleet_jobs{federation, status}                           jobs by NVFlare status
    arcflare_fleet_rounds_completed_total{federation}                 FL rounds completed, all jobs

Labels are bounded by what a consortium configures (federations, participants) and by NVFlare's
own states; no job id is a label. Nothing is computed between scrapes.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import get_args

from arcflare.contracts.events import HealthStatus
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

HEALTH_STATES = get_args(HealthStatus)
COMPLETED = "FINISHED:COMPLETED"
_ROUNDS = """
SELECT j.federation, SUM(CASE WHEN j.status = ? AND j.rounds IS NOT NULL THEN j.rounds
                              ELSE COALESCE(m.last_step + 1, 0) END)
FROM jobs j LEFT JOIN (SELECT federation, job_id, MAX(step) AS last_step FROM job_metrics
                       GROUP BY federation, job_id) m
  ON m.federation = j.federation AND m.job_id = j.job_id
GROUP BY j.federation
"""


class FleetCollector(Collector):
    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)

    def collect(self) -> Iterator[Metric]:
        sites = GaugeMetricFamily("arcflare_fleet_sites",
                                  "Sites of each federation by their agent's last health report "
                                  "(unknown: none yet); removed sites are not counted.",
                                  labels=["federation", "health"])
        expiry = GaugeMetricFamily("arcflare_fleet_certificate_expiry_timestamp_seconds",
                                   "When each NVFlare certificate of the federation expires "
                                   "(Unix time).", labels=["federation", "participant", "kind"])
        jobs = GaugeMetricFamily("arcflare_fleet_jobs", "Jobs of each federation by NVFlare "
                                 "status.", labels=["federation", "status"])
        rounds = CounterMetricFamily("arcflare_fleet_rounds_completed",
                                     "Federated learning rounds completed, over every job of "
                                     "the federation.", labels=["federation"])
        if not self.db_path.exists():  # before the first event: an empty fleet
            yield from (sites, expiry, jobs, rounds)
            return
        db = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
        try:
            self._sites(db, sites)
            for federation, participant, kind, not_after in db.execute(
                    "SELECT federation, participant, kind, not_after FROM certificates "
                    "WHERE not_after IS NOT NULL"):
                expiry.add_metric([federation, participant, kind],
                                  datetime.fromisoformat(not_after).timestamp())
            for federation, status, count in db.execute(
                    "SELECT federation, COALESCE(status, 'unknown'), COUNT(*) FROM jobs "
                    "GROUP BY 1, 2"):
                jobs.add_metric([federation, status], count)
            for federation, total in db.execute(_ROUNDS, (COMPLETED,)):
                rounds.add_metric([federation], total or 0)
        finally:
            db.close()
        yield from (sites, expiry, jobs, rounds)

    @staticmethod
    def _sites(db: sqlite3.Connection, sites: GaugeMetricFamily) -> None:
        counts: dict[str, dict[str, int]] = {}
        for federation, health, count in db.execute(
                "SELECT federation, COALESCE(health, 'unknown'), COUNT(*) FROM sites "
                "WHERE removed = 0 GROUP BY 1, 2"):
            counts.setdefault(federation, dict.fromkeys(HEALTH_STATES, 0))[health] = count
        for federation, by_health in counts.items():
            for health, count in by_health.items():  # every state, 0 included: stable series
                sites.add_metric([federation, health], count)


_registered: dict[int, FleetCollector] = {}


def register(db_path: Path, registry: CollectorRegistry = REGISTRY) -> FleetCollector:
    """Show the fleet read from this ledger database on the process's /metrics (a later call,
    a ledger built again in the same process, replaces the earlier one)."""
    earlier = _registered.pop(id(registry), None)
    if earlier is not None:
        registry.unregister(earlier)
    collector = FleetCollector(db_path)
    registry.register(collector)
    _registered[id(registry)] = collector
    return collector
