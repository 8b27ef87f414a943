"""Test data: a realistic stream of events for one federation, as enveloped messages.

Envelopes are what they are once every message is signed: an event's `issued_by` is the
service that published it ("service:deployer"), telemetry's the site's agent, and
`on_behalf_of` the person whose command started the flow. Automatic commands (the
deployer's auto-deploys) keep the flow's correlation id, as the runtime does.
"""
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
OWNER = "owner@consortium.org"
SCIENTIST = "scientist@north.org"
REGISTERED = ("Registered with the NVFlare server at localhost:8102 as north-1 "
              "(project hospitals).")
#: who publishes what, as the signer principal of each event
PUBLISHER = {
    "FederationProvisioned": "service:provisioner", "SiteProvisioned": "service:provisioner",
    "SiteRemoved": "service:provisioner", "CertificateExpiring": "service:provisioner",
    "CertificateRenewed": "service:provisioner",
    "ServerDeployed": "service:deployer", "SiteDeployed": "service:deployer",
    "DeploymentFailed": "service:deployer", "SiteStopped": "service:deployer",
    "FederationTornDown": "service:deployer", "JobSubmitted": "service:job-controller",
    "JobStatusChanged": "service:job-controller", "JobCompleted": "service:job-controller",
    "JobFailed": "service:job-controller", "FederationStatusObserved": "service:job-controller",
    "ModelRegistered": "service:metrics-relay", "AlertRaised": "service:alerter",
}


def at(envelope: Envelope, seconds: float) -> Envelope:
    return envelope.model_copy(update={"occurred_at": T0 + timedelta(seconds=seconds)})


def outcome(message: Message, command_id: str | None, seconds: float,
            issued_by: str | None = None, *, on_behalf_of: str | None = None,
            flow: str | None = None) -> Envelope:
    """An event caused by `command_id` (None: by nobody), `seconds` after T0.

    issued_by defaults to the publishing service (a site's agent for its telemetry);
    flow is the correlation id: the command that started it all (default: command_id).
    """
    if issued_by is None:
        site = getattr(message, "site", None)
        issued_by = PUBLISHER.get(message.type_name()) or f"site:{FED}/{site}"
    return at(Envelope.wrap(message, causation_id=command_id, issued_by=issued_by,
                            on_behalf_of=on_behalf_of, correlation_id=flow or command_id),
              seconds)


def provisioning(create: str = "cmd-create") -> list[Envelope]:
    provisioned = outcome(e.FederationProvisioned(
        federation=FED, server_endpoint="localhost:8102", server_kit_ref="kits/server",
        admin_kit_ref="kits/admin", admin_name=OWNER, sites=["north-1", "south-1"],
        ca_fingerprint=FP, ca_not_after=T0 + timedelta(days=360, hours=1),
        server_cert_fingerprint=FP, server_not_after=T0 + timedelta(days=360, hours=1),
        admins=[c.AdminSpec(email=OWNER, org="consortium", role="project_admin")],
        auto_deploy=True,
    ), create, 1, on_behalf_of=OWNER)
    return [provisioned, *[
        outcome(e.SiteProvisioned(federation=FED, site=s, org=s.split("-")[0], kit_ref=f"kits/{s}",
                                  cert_fingerprint=FP,
                                  not_after=T0 + timedelta(days=360, hours=1), deploy=True),
                create, 1.1, on_behalf_of=OWNER)
        for s in ("north-1", "south-1")]]


def federation_stream(log_tails: int = 5) -> list[Envelope]:
    create, submit, refresh = "cmd-create", "cmd-submit", "cmd-refresh"
    stream = [
        *provisioning(create),
        # the deployer's automatic DeployServer/DeploySite, inside the owner's flow
        outcome(e.ServerDeployed(federation=FED, endpoint="localhost:8102", backend="local",
                                 handle="4242", generation=1),
                "auto-deploy-server", 5, on_behalf_of=OWNER, flow=create),
        outcome(e.SiteDeployed(federation=FED, site="north-1", backend="local", handle="4343",
                               generation=1),
                "auto-deploy-north", 6, on_behalf_of=OWNER, flow=create),
        outcome(e.DeploymentFailed(federation=FED, target="south-1", reason="no python3",
                                   generation=1),
                "cmd-deploy-south", 6.5, on_behalf_of=OWNER),
        outcome(e.SiteHealthChanged(federation=FED, site="north-1", status="starting",
                                    diagnosis_code="starting"), None, 7),
        outcome(e.SiteHealthChanged(federation=FED, site="north-1", status="connected",
                                    previous="starting", diagnosis_code="registered",
                                    diagnosis=REGISTERED), None, 15),
        outcome(e.FederationStatusObserved(
            federation=FED, server_status="stopped",
            clients=[e.ClientView(name="north-1", last_connect_time=T0 + timedelta(seconds=14))],
        ), refresh, 16, on_behalf_of=SCIENTIST),
        outcome(e.FederationStatusObserved(
            federation=FED, server_status="started",
            clients=[e.ClientView(name="north-1", last_connect_time=T0 + timedelta(seconds=30))],
            running_jobs=["job-1"],
        ), None, 31),
        outcome(e.JobSubmitted(federation=FED, job_id="job-1", name="fedavg", sites=["north-1"],
                               rounds=3), submit, 20, on_behalf_of=SCIENTIST),
        outcome(e.JobStatusChanged(federation=FED, job_id="job-1", status="RUNNING",
                                   previous="SUBMITTED"), submit, 22),
        outcome(e.JobCompleted(federation=FED, job_id="job-1", name="fedavg",
                               status="FINISHED:COMPLETED", duration_s=18.5,
                               result_ref="results/job-1"), submit, 40),
        # a late poll that still said RUNNING must not undo the final state
        outcome(e.JobStatusChanged(federation=FED, job_id="job-1", status="RUNNING"), None, 41),
        outcome(e.ModelRegistered(federation=FED, job_id="job-1", name="fedavg-model",
                                  version="1", run_id="run-9"), None, 42),
        outcome(e.JobFailed(federation=FED, name="too-big", reason="min_clients 5 not met"),
                "cmd-submit-2", 50, on_behalf_of=SCIENTIST),
        outcome(e.CommandRejected(federation=FED, command_type="StopSite", command_id="cmd-stop",
                                  reason="unauthorized", detail="member may only read",
                                  claimed_by="viewer@south.org", proven_by="viewer@south.org"),
                "cmd-stop", 51, "service:deployer", on_behalf_of="viewer@south.org"),
        outcome(e.CertificateExpiring(federation=FED, participant="south-1", kind="client",
                                      fingerprint=FP, not_after=T0 + timedelta(days=360, hours=1),
                                      days_left=20), None, 52),
        outcome(e.AlertRaised(rule="deployment-failed", severity="critical",
                              summary="south-1 failed", federation=FED, site="south-1",
                              source_type="DeploymentFailed", source_message_id="x"), None, 53),
        *[outcome(e.SiteHeartbeat(federation=FED, site="north-1", status="connected", pid=4343,
                                  diagnosis_code="registered", diagnosis=REGISTERED,
                                  current_job="job-1" if 20 < s < 40 else None), None, s)
          for s in (10, 25, 35, 45)],
        *[outcome(e.SiteLogTail(federation=FED, site="north-1", file="log.txt",
                                lines=[f"line {i}"]), None, 60 + i) for i in range(log_tails)],
        outcome(e.FlareEventObserved(federation=FED, job_id="job-1", event="job_started"),
                None, 21, f"bridge:{FED}"),
        outcome(e.MetricsReported(federation=FED, job_id="job-1", site="north-1", points=[
            e.MetricPoint(key="accuracy", value=0.5, step=1, timestamp_ms=1),
            e.MetricPoint(key="accuracy", value=0.9, step=3, timestamp_ms=3),
        ]), None, 39, f"bridge:{FED}"),
        outcome(e.MetricsReported(federation=FED, job_id="job-1", site="north-1", points=[
            e.MetricPoint(key="accuracy", value=0.7, step=2, timestamp_ms=2),
        ]), None, 38, f"bridge:{FED}"),
    ]
    return stream


@pytest.fixture
def events() -> list[Envelope]:
    return federation_stream()


@pytest.fixture
def enveloped():
    """outcome(message, command_id, seconds_after_T0, issued_by=..., on_behalf_of=...)"""
    return outcome


@pytest.fixture(autouse=True)
def _identities(tmp_path):
    """Every test's data dir holds the identities `arcflare local up` would create, and those
    of the people the stream names."""
    ensure_local_identities(tmp_path / "data", operators=(
        *DEFAULT_OPERATORS, ("owner@consortium.org", "consortium"),
        ("scientist@north.org", "north")))
