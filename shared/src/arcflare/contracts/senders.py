"""Who may say what: the permission table beside the message catalogue (docs/architecture.md,
"Trust").

Each fact has one author. A message's proven sender — the principal of the certificate
that signed it — must be allowed by this table for the message's type, or the message is
refused before any handler runs:
- commands come from persons (then the role policy in arcflare.contracts.authz decides),
  and the few a service sends on someone's behalf (auto-deploy) from that service;
- each event type comes from the one service that owns it;
- a site's telemetry comes only from the agent of that very (federation, site), a job's
  metrics and NVFlare events only from the bridge of that federation;
- any service, and any site agent about its own site, may announce that it refused or gave
  up on a message (CommandRejected, CommandFailed, MessageRefused, OutboxMessageParked).

Pure: the principal arrives as its parts (kind, name, federation, site); no I/O here.
`python -m arcflare.contracts.senders` prints the table as Markdown (docs/permissions.md).
"""
from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass

#: event type -> the service that owns it
EVENT_OWNERS: Mapping[str, str] = {
    "FederationProvisioned": "provisioner",
    "SiteProvisioned": "provisioner",
    "SiteRemoved": "provisioner",
    "CertificateExpiring": "provisioner",
    "CertificateRenewed": "provisioner",
    "ServerDeployed": "deployer",
    "SiteDeployed": "deployer",
    "DeploymentFailed": "deployer",
    "SiteStopped": "deployer",
    "FederationTornDown": "deployer",
    "ParticipantRolled": "deployer",
    "RollPostponed": "deployer",
    "RollRefused": "deployer",
    "JobWaitingForClients": "job-controller",
    "JobSubmitted": "job-controller",
    "JobStatusChanged": "job-controller",
    "JobCompleted": "job-controller",
    "JobFailed": "job-controller",
    "FederationStatusObserved": "job-controller",
    "ModelRegistered": "metrics-relay",
    "AlertRaised": "alerter",
}
#: what the agent of a site says about that site (it sends only to the telemetry topic)
SITE_AGENT_TYPES = frozenset({"SiteHeartbeat", "SiteLogTail", "SiteHealthChanged",
                              "SiteClientRestarted"})
#: what a federation's NVFlare bridge reports from the server's job process
BRIDGE_TYPES = frozenset({"MetricsReported", "FlareEventObserved"})
#: a consumer's own account of a message it refused or could not handle
REFUSAL_TYPES = frozenset({"CommandRejected", "CommandFailed", "MessageRefused",
                           "OutboxMessageParked"})
#: commands a service sends on its own initiative, on behalf of the person behind the flow
SERVICE_COMMANDS: Mapping[str, frozenset[str]] = {
    "DeployServer": frozenset({"deployer"}),
    "DeploySite": frozenset({"deployer"}),
}


#: a site agent may send only to the telemetry topic (deploy/servicebus: its only Send
#: right), so what it says travels there, whatever the message's usual channel
SITE_AGENT_TOPIC = "telemetry"


def topics_of(type_name: str, channel: str) -> frozenset[str]:
    """Where a message of this type may arrive: its channel, and the telemetry topic too for
    what site agents say (their health changes, restarts, refusals)."""
    if type_name in SITE_AGENT_TYPES or type_name in REFUSAL_TYPES:
        return frozenset({channel, SITE_AGENT_TOPIC})
    return frozenset({channel})


@dataclass(frozen=True)
class Sender:
    """The proven principal, in parts: kind is person | service | site | bridge."""

    kind: str
    name: str
    federation: str | None = None
    site: str | None = None

    @property
    def label(self) -> str:
        if self.kind == "site":
            return f"the site agent of {self.site} in {self.federation}"
        if self.kind == "bridge":
            return f"the NVFlare bridge of {self.federation}"
        return f"{self.kind} {self.name}"


def sender_refusal(sender: Sender, type_name: str, category: str,
                   federation: str | None, site: str | None) -> str | None:
    """Why `sender` may not send a message of this type about (federation, site), or None.

    category: "command" | "event" (telemetry is an event category here)."""
    if category == "command":
        return _command(sender, type_name)
    if type_name in REFUSAL_TYPES:
        if sender.kind == "service":
            return None
        if sender.kind == "site" and federation == sender.federation:
            return None
        return f"{type_name} comes from a service or a site agent, not from {sender.label}"
    if type_name in SITE_AGENT_TYPES:
        if sender.kind != "site":
            return f"{type_name} comes only from the agent of the site it is about, not from {sender.label}"
        if (federation, site) != (sender.federation, sender.site):
            return (f"{sender.label} may report only on its own site, not on {site} "
                    f"of {federation}")
        return None
    if type_name in BRIDGE_TYPES:
        if sender.kind != "bridge":
            return f"{type_name} comes only from a federation's NVFlare bridge, not from {sender.label}"
        if federation != sender.federation:
            return f"{sender.label} may report only on its own federation, not on {federation}"
        return None
    owner = EVENT_OWNERS.get(type_name)
    if owner is None:
        return f"{type_name} has no author in the permission table"
    if (sender.kind, sender.name) != ("service", owner):
        return f"{type_name} comes only from service {owner}, not from {sender.label}"
    return None


def _command(sender: Sender, type_name: str) -> str | None:
    if sender.kind == "person":
        return None  # the role policy decides what this person may order
    if sender.kind == "service" and sender.name in SERVICE_COMMANDS.get(type_name, ()):
        return None
    return f"commands come from persons; {sender.label} may not send {type_name}"


def permission_rows() -> list[tuple[str, str]]:
    """(message type, who may send it) for every registered message type."""
    from arcflare.contracts.base import message_types

    rows = []
    for name, cls in sorted(message_types().items()):
        if cls.category == "command":
            extra = SERVICE_COMMANDS.get(name)
            who = "a person (then the role policy)" + (
                f"; service {', '.join(sorted(extra))} on a person's behalf" if extra else "")
        elif name in SITE_AGENT_TYPES:
            who = "the agent of that very (federation, site)"
        elif name in BRIDGE_TYPES:
            who = "the NVFlare bridge of that federation"
        elif name in REFUSAL_TYPES:
            who = "any service; a site agent about its own federation"
        else:
            who = f"service {EVENT_OWNERS.get(name, '(nobody: refused)')}"
        rows.append((name, who))
    return rows


def markdown() -> str:
    lines = ["# Who may send what", "",
             "Generated by `python -m arcflare.contracts.senders > docs/permissions.md` from",
             "`arcflare.contracts.senders`: every consumer refuses (Forbidden) a message whose",
             "proven sender this table does not allow. See docs/architecture.md, \"Trust\".", "",
             "| message | who may send it |", "|---|---|"]
    lines += [f"| `{name}` | {who} |" for name, who in permission_rows()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
