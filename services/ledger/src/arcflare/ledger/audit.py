"""The audit trail: every event a command caused (its outcome, and what followed from it),
one append-only row each, grouped into one line per command when read (trail.py).

Every command ends in an event naming it as causation_id. Whether a causation_id is a
command is decided when reading (it is not among the recorded events), so the trail
is the same whatever order events arrived in.
"""
from __future__ import annotations

import sqlite3

from arcflare.contracts import events as e
from arcflare.contracts.base import Message
from arcflare.contracts.envelope import Envelope
from arcflare.contracts.outcomes import ACCEPTED, FAILURE, SUCCESS
from arcflare.ledger.rows import timestamp, version
from arcflare.observability.tracing import current_trace_id

#: events that answer a command or follow from it; the rest (alerts, scheduled warnings,
#: observations nobody asked for) never belong to one.
CAUSED_BY_COMMANDS = frozenset(
    {t for types in SUCCESS.values() for t in types} | set(FAILURE)
    | {"JobStatusChanged", "JobCompleted", "SiteStopped"}
)
#: the command an event answers, when that event alone says so
_ANSWERS: dict[type[Message], str] = {
    e.FederationProvisioned: "CreateFederation",
    e.SiteRemoved: "RemoveSite",
    e.ServerDeployed: "DeployServer",
    e.FederationTornDown: "TeardownFederation",
    e.JobWaitingForClients: "SubmitJob",
    e.JobSubmitted: "SubmitJob",
    e.JobFailed: "SubmitJob",
    e.FederationStatusObserved: "RefreshFederationStatus",
    e.SiteClientRestarted: "RestartSiteClient",
}


def command_type_of(event: Message) -> str | None:
    """The command this event answers, or None when it could answer more than one
    (SiteProvisioned: CreateFederation or AddSite; the trail decides by its siblings)."""
    if isinstance(event, e.CommandRejected | e.CommandFailed):
        return event.command_type
    if isinstance(event, e.SiteDeployed):
        return "RestartSite" if event.restart else "DeploySite"
    if isinstance(event, e.DeploymentFailed):
        if event.target == "server":
            return "DeployServer"
        return "RestartSite" if event.restart else "DeploySite"
    if isinstance(event, e.SiteStopped) and event.reason == "crashed":
        # only a deployment still starting names its request as the crash's cause
        return "DeployServer" if event.site == "server" else "DeploySite"
    return _ANSWERS.get(type(event))


def outcome_of(event: Message) -> tuple[str | None, str | None]:
    """(outcome, reason): succeeded, failed, rejected, or None for progress on the way."""
    if isinstance(event, e.CommandRejected):
        return "rejected", f"{event.reason}: {event.detail}" if event.detail else event.reason
    if isinstance(event, e.CommandFailed):
        return "failed", f"{event.reason}: {event.detail}" if event.detail else event.reason
    if isinstance(event, e.DeploymentFailed | e.JobFailed):
        return "failed", event.reason
    if isinstance(event, e.JobCompleted) and event.status != "FINISHED:COMPLETED":
        return "failed", event.reason or event.status
    if isinstance(event, e.SiteStopped) and event.reason == "crashed":
        return "failed", "crashed"
    if isinstance(event, e.JobStatusChanged) or event.type_name() in ACCEPTED:
        return None, None  # on the way: the command's own end is yet to come
    if event.type_name() in FAILURE or event.type_name().endswith("Failed"):
        return "failed", getattr(event, "reason", None)
    return "succeeded", None


def note_of(event: Message) -> str:
    """What tells this event from its siblings in a folded list: the site, job or status."""
    parts = [getattr(event, name, None) for name in ("site", "target", "job_id", "status")]
    return " ".join(str(p) for p in parts if p)


def record_outcome(db: sqlite3.Connection, envelope: Envelope, event: Message) -> None:
    if envelope.type not in CAUSED_BY_COMMANDS:
        return
    # a refusal names the command it refuses (its cause may be a stand-in)
    command_id = getattr(event, "command_id", None) or envelope.causation_id
    if not command_id:
        return  # nobody asked: a watcher's own observation or a crash found later
    outcome, reason = outcome_of(event)
    db.execute(
        "INSERT OR IGNORE INTO audit (message_id, command_id, command_type, outcome_type,"
        " outcome, reason, issued_by, on_behalf_of, claimed_by, proven_by, correlation_id,"
        " federation, note, occurred_at, v, trace_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (envelope.message_id, command_id, command_type_of(event), envelope.type,
         outcome or "progress", reason, envelope.issued_by, envelope.on_behalf_of,
         getattr(event, "claimed_by", None), getattr(event, "proven_by", None),
         envelope.correlation_id, envelope.federation or getattr(event, "federation", None),
         note_of(event), timestamp(envelope.occurred_at), version(envelope),
         # the outcome is handled inside the command's trace: the consumer span continues it
         current_trace_id()),
    )
