"""The audit trail: one append-only row per command outcome (docs/architecture.md §2: every command
ends in an event naming it as causation_id).

An outcome type caused by another *event* (auto-deploy after provisioning, a
periodic status poll) is not a command outcome; that is decided when reading
(`causation_id` not among recorded events), so the trail is the same whatever
order events arrived in.
"""
from __future__ import annotations

import sqlite3

from arcflare.contracts import events as e
from arcflare.contracts.base import Message
from arcflare.contracts.envelope import Envelope
from arcflare.ledger.rows import timestamp, version

#: outcome event -> the command it answers, when only one command can produce it
OUTCOMES: dict[type[Message], str | None] = {
    e.FederationProvisioned: "CreateFederation",
    e.SiteProvisioned: None,  # CreateFederation or AddSite
    e.SiteRemoved: "RemoveSite",
    e.ServerDeployed: "DeployServer",
    e.SiteDeployed: None,  # DeploySite or RestartSite
    e.DeploymentFailed: None,
    e.SiteStopped: "StopSite",
    e.FederationTornDown: "TeardownFederation",
    e.JobSubmitted: "SubmitJob",
    e.JobFailed: "SubmitJob",
    e.JobCompleted: None,  # SubmitJob (waited for) or AbortJob
    e.FederationStatusObserved: "RefreshFederationStatus",
    e.SiteClientRestarted: "RestartSiteClient",
    e.CommandRejected: None,  # carried in the event
}


def outcome_of(event: Message) -> tuple[str, str | None]:
    """(outcome, reason): succeeded, failed or rejected."""
    if isinstance(event, e.CommandRejected):
        return "rejected", f"{event.reason}: {event.detail}" if event.detail else event.reason
    if isinstance(event, e.DeploymentFailed | e.JobFailed):
        return "failed", event.reason
    if isinstance(event, e.JobCompleted) and event.status != "FINISHED:COMPLETED":
        return "failed", event.reason or event.status
    if isinstance(event, e.SiteStopped) and event.reason == "crashed":
        return "failed", "crashed"
    return "succeeded", None


def record_outcome(db: sqlite3.Connection, envelope: Envelope, event: Message) -> None:
    if type(event) not in OUTCOMES:
        return
    command_id = envelope.causation_id
    command_type = OUTCOMES[type(event)]
    if isinstance(event, e.CommandRejected):
        command_id, command_type = event.command_id, event.command_type
    if not command_id:
        return
    outcome, reason = outcome_of(event)
    db.execute(
        "INSERT OR IGNORE INTO audit (message_id, command_id, command_type, outcome_type,"
        " outcome, reason, issued_by, federation, occurred_at, v) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (envelope.message_id, command_id, command_type, envelope.type, outcome, reason,
         envelope.issued_by, envelope.federation or getattr(event, "federation", None),
         timestamp(envelope.occurred_at), version(envelope)),
    )
