"""A large federation's history as real events — many hospitals, many jobs — and the ledger's
read model built from it with the ledger's own projections (what replaying the events from
the bus would give, without waiting for the bus).
"""
from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from arcflare.contracts import commands as c
from arcflare.contracts import events as e
from arcflare.contracts.base import Message
from arcflare.contracts.envelope import Envelope
from arcflare.ledger.console_model import record_for_console
from arcflare.ledger.projections import record
from arcflare.ledger.tables import MIGRATIONS
from arcflare.runtime import StateStore

FINGERPRINT = ":".join(["AB"] * 32)
OWNER = "owner@consortium.org"
#: how the fleet's hospitals are doing: most are up, some are not
HEALTH = ["connected"] * 8 + ["disconnected", "crashed"]
DIAGNOSES = {"disconnected": "Connections to the NVFlare server time out: a firewall or "
                             "proxy is probably dropping the traffic.",
             "crashed": "The NVFlare client process exited (code -9)."}


def site_name(n: int) -> str:
    return f"hospital-{n:03d}"


def fleet_stream(federation: str, *, sites: int = 50, jobs: int = 200, rounds: int = 3,
                 sites_per_job: int = 5, seed: int = 7,
                 start: datetime | None = None) -> list[Envelope]:
    """Provisioning, deployment, health and `jobs` finished jobs with their metrics."""
    rng = random.Random(seed)
    t0 = start or datetime.now(UTC) - timedelta(hours=6)
    clock = iter(t0 + timedelta(seconds=i) for i in range(10**7))
    names = [site_name(i) for i in range(1, sites + 1)]

    def at(message: Message, causation: str | None = None) -> Envelope:
        env = Envelope.wrap(message, causation_id=causation, issued_by=OWNER)
        return env.model_copy(update={"occurred_at": next(clock)})

    out = [at(e.FederationProvisioned(
        federation=federation, server_endpoint="server.example:8002", server_kit_ref="k/server",
        admin_kit_ref="k/admin", admin_name=OWNER, sites=names, ca_fingerprint=FINGERPRINT,
        admins=[c.AdminSpec(email=OWNER, org="consortium", role="project_admin")]), "create")]
    out.append(at(e.ServerDeployed(federation=federation, endpoint="server.example:8002",
                                   backend="local", handle="1"), "deploy"))
    for i, name in enumerate(names):
        health = HEALTH[i % len(HEALTH)]
        out += [at(e.SiteProvisioned(federation=federation, site=name, org=f"org_{i % 7}",
                                     kit_ref=f"k/{name}", cert_fingerprint=FINGERPRINT,
                                     not_after=t0 + timedelta(days=30 + 3 * i)), "create"),
                at(e.SiteDeployed(federation=federation, site=name, backend="local",
                                  handle=str(1000 + i))),
                at(e.SiteHealthChanged(federation=federation, site=name, status="starting")),
                at(e.SiteHealthChanged(federation=federation, site=name, status=health,
                                       previous="starting",
                                       diagnosis=DIAGNOSES.get(health, ""))),
                at(e.SiteHeartbeat(federation=federation, site=name, status=health,
                                   diagnosis=DIAGNOSES.get(health, ""), pid=2000 + i))]
        if health == "crashed":
            out.append(at(e.AlertRaised(
                rule="site-crashed", severity="critical", summary=f"{name}: {DIAGNOSES[health]}",
                federation=federation, site=name, source_type="SiteHealthChanged",
                source_message_id=out[-2].message_id)))
    out.append(at(e.FederationStatusObserved(
        federation=federation, server_status="started",
        clients=[e.ClientView(name=n, last_connect_time=t0, nvflare_version="2.9.0")
                 for i, n in enumerate(names) if HEALTH[i % len(HEALTH)] == "connected"])))
    for j in range(jobs):
        out += _job(federation, f"job-{j:04d}", rng.sample(names, min(sites_per_job, sites)),
                    rounds, rng, at)
    return out


def _job(federation: str, job_id: str, sites: list[str], rounds: int, rng: random.Random,
         at) -> list[Envelope]:
    submit = f"submit-{job_id}"
    out = [at(e.JobSubmitted(federation=federation, job_id=job_id, name="fedavg",
                             sites=sites, rounds=rounds), submit),
           at(e.JobStatusChanged(federation=federation, job_id=job_id, status="RUNNING",
                                 previous="SUBMITTED"))]
    for site in sites:
        base = rng.uniform(0.5, 0.7)
        out.append(at(e.MetricsReported(federation=federation, job_id=job_id, site=site, points=[
            e.MetricPoint(key=key, value=min(1.0, base + 0.08 * r + rng.uniform(0, 0.02)),
                          step=r, timestamp_ms=1_000 * r)
            for r in range(rounds) for key in ("accuracy", "train_accuracy")])))
    out += [at(e.JobCompleted(federation=federation, job_id=job_id, name="fedavg",
                              status="FINISHED:COMPLETED", duration_s=20.0 + rng.random() * 10,
                              result_ref=f"results/{job_id}"), submit),
            at(e.ModelRegistered(federation=federation, job_id=job_id, name="fedavg-model",
                                 version=job_id.rsplit("-", 1)[1].lstrip("0") or "0",
                                 run_id=f"run-{job_id}"))]
    return out


def load_read_model(db_path: Path, envelopes: list[Envelope]) -> None:
    """Project the envelopes into the ledger database at `db_path` in one transaction."""
    store = StateStore(db_path, migrations=MIGRATIONS)
    with store.connect() as db:
        db.execute("BEGIN IMMEDIATE")
        for envelope in envelopes:
            record(db, envelope)
            record_for_console(db, envelope, envelope.open())
        db.execute("COMMIT")
