"""When a job sent with SubmitJob reached each stage, as the events on the bus tell it.

Matched by federation and job name (unique per benchmark run), not by the command's
outcome: SubmitJob may first answer that it waits for clients and submit later.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from arcflare.client import Client
from arcflare.contracts.envelope import Envelope

WATCHED = ("JobSubmitted", "JobStatusChanged", "JobCompleted", "JobFailed", "CommandRejected")


@dataclass
class JobTimeline:
    """Monotonic times (time.monotonic()) at which each stage was seen."""

    sent_at: float
    job_id: str | None = None
    submitted_at: float | None = None
    running_at: float | None = None
    completed_at: float | None = None
    completed: Envelope | None = None
    statuses: list[str] = field(default_factory=list)


def follow_job(client: Client, command_id: str, federation: str, name: str, sent_at: float,
               timeout: float = 900) -> JobTimeline:
    """Follow the job to JobCompleted; raise on JobFailed, CommandRejected or a timeout."""
    timeline = JobTimeline(sent_at)
    for env in client.follow(types=WATCHED, federation=federation, timeout=timeout):
        now = time.monotonic()
        if env.type == "CommandRejected" and env.payload.get("command_id") == command_id:
            raise RuntimeError(f"SubmitJob rejected: {env.payload.get('detail')}")
        if env.type == "JobFailed" and env.payload.get("name") == name:
            raise RuntimeError(f"job {name} failed: {env.payload.get('reason')}")
        if env.type == "JobSubmitted" and env.payload.get("name") == name:
            timeline.job_id, timeline.submitted_at = env.payload["job_id"], now
        if timeline.job_id is None or env.payload.get("job_id") != timeline.job_id:
            continue
        if env.type == "JobStatusChanged":
            timeline.statuses.append(env.payload["status"])
            if env.payload["status"] == "RUNNING" and timeline.running_at is None:
                timeline.running_at = now
        elif env.type == "JobCompleted":
            timeline.completed_at, timeline.completed = now, env
            if env.payload["status"] != "FINISHED:COMPLETED":
                raise RuntimeError(f"job {name} ended {env.payload['status']}: "
                                   f"{env.payload.get('reason')}")
            return timeline
    raise TimeoutError(f"job {name} did not complete within {timeout:.0f} s")
