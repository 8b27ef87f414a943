"""Which MLflow runs belong to which NVFlare job: a parent run per job, a child run per site.

Runs are made lazily by whichever message needs them first (metrics may overtake
JobSubmitted), found again by their key tag, and described with the job's lineage
as facts arrive. The state DB caches run ids; MLflow's key tags are the truth, so
a handler that ran halfway before a crash finds, never duplicates, its runs.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, fields

from arcflare.metrics_relay.adapters.tracking import Tracking
from arcflare.metrics_relay.settings import MetricsRelaySettings
from arcflare.runtime import UnitOfWork


@dataclass(frozen=True)
class Job:
    job_id: str
    federation: str
    name: str | None = None
    sites: str | None = None
    rounds: int | None = None
    command_id: str | None = None
    nvflare_version: str | None = None
    server_run_id: str | None = None
    status: str | None = None
    experiment_id: str | None = None
    parent_run_id: str | None = None
    model_name: str | None = None
    model_version: str | None = None

    @property
    def site_list(self) -> list[str]:
        return json.loads(self.sites) if self.sites else []

    def lineage(self) -> dict[str, str]:
        tags = {"federation": self.federation, "job_id": self.job_id,
                "job_name": self.name, "sites": ",".join(self.site_list) or None,
                "rounds": self.rounds, "nvflare_version": self.nvflare_version,
                "command_id": self.command_id, "nvflare_status": self.status}
        return {k: str(v) for k, v in tags.items() if v is not None}


_COLUMNS = [f.name for f in fields(Job)]


class JobRuns:
    def __init__(self, tracking: Tracking, settings: MetricsRelaySettings) -> None:
        self.tracking = tracking
        self.settings = settings
        # search-then-create is not atomic in MLflow: one creator at a time in this process
        self._creating = threading.Lock()
        self._first_waited: dict[str, float] = {}

    def get(self, uow: UnitOfWork, job_id: str) -> Job | None:
        row = uow.db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE job_id = ?",
                             (job_id,)).fetchone()
        return Job(*row) if row else None

    def remember(self, uow: UnitOfWork, federation: str, job_id: str, *,
                 sites: list[str] | None = None, **facts: object) -> Job:
        """Record what a message says about a job (known facts are kept, new ones added)."""
        if sites:
            facts["sites"] = json.dumps(sorted(sites))
        facts = {k: v for k, v in facts.items() if v is not None}
        db = uow.write()
        db.execute("INSERT OR IGNORE INTO jobs (job_id, federation) VALUES (?, ?)",
                   (job_id, federation))
        if facts:
            db.execute(f"UPDATE jobs SET {', '.join(f'{k} = ?' for k in facts)} WHERE job_id = ?",
                       (*facts.values(), job_id))
        return self.get(uow, job_id)

    def parent(self, uow: UnitOfWork, job: Job) -> str:
        if job.parent_run_id:
            return job.parent_run_id
        with self._creating:
            adopted = self._adopted_server_run(job)
            if adopted:
                experiment_id, run_id = adopted
            else:
                experiment_id = self.tracking.experiment(job.federation,
                                                         {"federation": job.federation})
                run_id = self.tracking.run(experiment_id, key=f"{job.federation}/{job.job_id}",
                                           name=job.name or job.job_id, tags=job.lineage())
        uow.write().execute("UPDATE jobs SET experiment_id = ?, parent_run_id = ? WHERE job_id = ?",
                            (experiment_id, run_id, job.job_id))
        return run_id

    def describe(self, uow: UnitOfWork, job: Job) -> str:
        """Make sure the parent run exists and carries everything known about the job."""
        run_id = self.parent(uow, job)
        self.tracking.set_tags(run_id, job.lineage())
        return run_id

    def site(self, uow: UnitOfWork, job: Job, site: str) -> str:
        row = uow.db.execute("SELECT run_id FROM site_runs WHERE job_id = ? AND site = ?",
                             (job.job_id, site)).fetchone()
        if row:
            return row[0]
        parent = self.parent(uow, job)
        experiment_id = self.get(uow, job.job_id).experiment_id
        with self._creating:
            run_id = self.tracking.run(
                experiment_id, key=f"{job.federation}/{job.job_id}/{site}", name=site,
                tags={"federation": job.federation, "job_id": job.job_id, "site": site},
                parent_run_id=parent)
        uow.write().execute("INSERT OR IGNORE INTO site_runs VALUES (?, ?, ?)",
                            (job.job_id, site, run_id))
        return run_id

    def site_runs(self, uow: UnitOfWork, job_id: str) -> dict[str, str]:
        return dict(uow.db.execute("SELECT site, run_id FROM site_runs WHERE job_id = ?",
                                   (job_id,)).fetchall())

    def waiting_for_job(self, message_id: str) -> float:
        """Seconds since this process first held this message back for an unknown job."""
        now = time.monotonic()
        if len(self._first_waited) > 100_000:  # messages long gone; keep memory bounded
            self._first_waited.clear()
        return now - self._first_waited.setdefault(message_id, now)

    def owns_parent(self, job: Job) -> bool:
        """False when the parent is the server's Azure ML job run: Azure ML ends that one."""
        return not (job.server_run_id and job.parent_run_id == job.server_run_id)

    def _adopted_server_run(self, job: Job) -> tuple[str, str] | None:
        if self.settings.parent_run != "server_job" or not job.server_run_id:
            return None
        experiment_id = self.tracking.run_experiment(job.server_run_id)
        return (experiment_id, job.server_run_id) if experiment_id else None
