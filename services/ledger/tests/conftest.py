"""Test data: a realistic stream of events for one federation, as enveloped messages."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from arcflare.contracts import commands as c
from arcflare.contracts import events as e
from arcflare.contracts.base import Message
from arcflare.contracts.envelope import Envelope
from arcflare.trust.local import DEFAULT_OPERATORS, ensure_local_identities

FED = "hospitals"
FP = ":".join(["AB"] * 32)
T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def at(envelope: Envelope, seconds: float) -> Envelope:
    return envelope.model_copy(update={"occurred_at": T0 + timedelta(seconds=seconds)})


def outcome(message: Message, command_id: str | None, seconds: float,
            issued_by: str = "owner@consortium.org") -> Envelope:
    return at(Envelope.wrap(message, causation_id=command_id, issued_by=issued_by), seconds)


def federation_stream(log_tails: int = 5) -> list[Envelope]:
    create, deploy, submit, refresh = "cmd-create", "cmd-deploy", "cmd-submit", "cmd-refresh"
    provisioned = outcome(e.FederationProvisioned(
        federation=FED, server_endpoint="localhost:8102", server_kit_ref="kits/server",
        admin_kit_ref="kits/admin", admin_name="owner@consortium.org",
        sites=["north-1", "south-1"], ca_fingerprint=FP,
        admins=[c.AdminSpec(email="owner@consortium.org", org="consortium",
                            role="project_admin")],
    ), create, 1)
    stream = [
        provisioned,
        *[outcome(e.SiteProvisioned(federation=FED, site=s, org=s.split("-")[0], kit_ref=f"kits/{s}",
                                    cert_fingerprint=FP, not_after=T0 + timedelta(days=360)),
                  create, 1.1) for s in ("north-1", "south-1")],
        outcome(e.ServerDeployed(federation=FED, endpoint="localhost:8102", backend="local",
                                 handle="4242"), deploy, 5),
        # auto-deploy: caused by an event, so not a command outcome
        outcome(e.SiteDeployed(federation=FED, site="north-1", backend="local", handle="4343"),
                provisioned.message_id, 6),
        outcome(e.DeploymentFailed(federation=FED, target="south-1", reason="no python3"),
                "cmd-deploy-south", 6.5),
        outcome(e.SiteHealthChanged(federation=FED, site="north-1", status="starting"), None, 7),
        outcome(e.SiteHealthChanged(federation=FED, site="north-1", status="connected",
                                    previous="starting"), None, 15),
        outcome(e.FederationStatusObserved(
            federation=FED, server_status="started",
            clients=[e.ClientView(name="north-1", last_connect_time=T0 + timedelta(seconds=14))],
        ), refresh, 16),
        outcome(e.FederationStatusObserved(
            federation=FED, server_status="started",
            clients=[e.ClientView(name="north-1", last_connect_time=T0 + timedelta(seconds=30))],
            running_jobs=["job-1"],
        ), None, 31),
        outcome(e.JobSubmitted(federation=FED, job_id="job-1", name="fedavg", sites=["north-1"],
                               rounds=3), submit, 20, issued_by="scientist@north.org"),
        outcome(e.JobStatusChanged(federation=FED, job_id="job-1", status="RUNNING",
                                   previous="SUBMITTED"), None, 22),
        outcome(e.JobCompleted(federation=FED, job_id="job-1", name="fedavg",
                               status="FINISHED:COMPLETED", duration_s=18.5,
                               result_ref="results/job-1"), submit, 40),
        # a late poll that still said RUNNING must not undo the final state
        outcome(e.JobStatusChanged(federation=FED, job_id="job-1", status="RUNNING"), None, 41),
        outcome(e.ModelRegistered(federation=FED, job_id="job-1", name="fedavg-model",
                                  version="1", run_id="run-9"), None, 42),
        outcome(e.JobFailed(federation=FED, name="too-big", reason="min_clients 5 not met"),
                "cmd-submit-2", 50),
        outcome(e.CommandRejected(federation=FED, command_type="StopSite", command_id="cmd-stop",
                                  reason="unauthorized", detail="member may only read"),
                "cmd-stop", 51, issued_by="viewer@south.org"),
        outcome(e.CertificateExpiring(federation=FED, participant="south-1", kind="client",
                                      fingerprint=FP, not_after=T0 + timedelta(days=20),
                                      days_left=20), None, 52),
        outcome(e.AlertRaised(rule="deployment-failed", severity="critical",
                              summary="south-1 failed", federation=FED, site="south-1",
                              source_type="DeploymentFailed", source_message_id="x"), None, 53),
        *[outcome(e.SiteHeartbeat(federation=FED, site="north-1", status="connected", pid=4343,
                                  current_job="job-1" if 20 < s < 40 else None), None, s)
          for s in (10, 25, 35, 45)],
        *[outcome(e.SiteLogTail(federation=FED, site="north-1", file="log.txt",
                                lines=[f"line {i}"]), None, 60 + i) for i in range(log_tails)],
        outcome(e.FlareEventObserved(federation=FED, job_id="job-1", event="job_started"),
                None, 21),
        outcome(e.MetricsReported(federation=FED, job_id="job-1", site="north-1", points=[
            e.MetricPoint(key="accuracy", value=0.5, step=1, timestamp_ms=1),
            e.MetricPoint(key="accuracy", value=0.9, step=3, timestamp_ms=3),
        ]), None, 39),
        outcome(e.MetricsReported(federation=FED, job_id="job-1", site="north-1", points=[
            e.MetricPoint(key="accuracy", value=0.7, step=2, timestamp_ms=2),
        ]), None, 38),
    ]
    return stream


@pytest.fixture
def events() -> list[Envelope]:
    return federation_stream()


@pytest.fixture
def enveloped():
    """outcome(message, command_id, seconds_after_T0, issued_by=...) -> Envelope"""
    return outcome


@pytest.fixture(autouse=True)
def _identities(tmp_path):
    """Every test's data dir holds the identities `arcflare local up` would create, and those
    of the people the stream names."""
    ensure_local_identities(tmp_path / "data", operators=(
        *DEFAULT_OPERATORS, ("owner@consortium.org", "consortium"),
        ("scientist@north.org", "north")))
