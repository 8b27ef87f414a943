"""Who may issue which command: NVFlare-style roles against a federation's admins (docs/architecture.md §4).

- project_admin: everything, and the only one who creates federations, adds or
  removes sites, deploys the server or tears the federation down;
- org_admin: deploys, stops and restarts the sites of its own organisation, renews
  their certificates, and tails their logs;
- lead: submits and aborts jobs, refreshes the federation status, tails logs;
- member: reads (the ledger's HTTP API); issues no command.

`authorize` is pure: the runtime asks it before a handler runs and turns a
refusal into CommandRejected(reason="Forbidden"). No I/O here.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from arcflare.contracts import commands as c
from arcflare.contracts.base import Command
from arcflare.contracts.commands import AdminSpec
from arcflare.contracts.envelope import Envelope

#: commands only the project admin may issue
PROJECT_ADMIN_ONLY: frozenset[type[Command]] = frozenset(
    {c.CreateFederation, c.AddSite, c.RemoveSite, c.DeployServer, c.TeardownFederation}
)
#: site commands an org admin may issue for a site of its own organisation
ORG_SITE_COMMANDS: frozenset[type[Command]] = frozenset(
    {c.DeploySite, c.StopSite, c.RestartSite, c.RestartSiteClient, c.TailSiteLogs,
     c.RenewCertificate}
)
LEAD_COMMANDS: frozenset[type[Command]] = frozenset(
    {c.SubmitJob, c.AbortJob, c.RefreshFederationStatus, c.TailSiteLogs}
)


def authorize(
    principal: str | None,
    command: Command,
    admins: list[AdminSpec],
    site_orgs: Mapping[str, str],
) -> str | None:
    """The reason `principal` may not issue `command`, or None when it may.

    admins: the federation's admins (for CreateFederation, the command's own list:
    whoever creates a federation must name themselves its project_admin).
    site_orgs: site name -> organisation, for org_admin's own-org rule.
    """
    if not principal:
        return f"{command.type_name()} carries no issued_by principal"
    if isinstance(command, c.CreateFederation) and not admins:
        admins = list(command.admins)
    federation = getattr(command, "federation", None) or "this federation"
    admin = _find(principal, admins)
    if admin is None:
        return f"{principal} is not an admin of federation {federation}"
    role, kind = admin.role, type(command)
    if role == "project_admin":
        return None
    if kind in PROJECT_ADMIN_ONLY:
        return f"only a project_admin may issue {kind.__name__}; {principal} is {role}"
    if role == "org_admin" and kind in ORG_SITE_COMMANDS:
        return _own_org(principal, admin, command, site_orgs)
    if role == "lead" and kind in LEAD_COMMANDS:
        return None
    if role == "member":
        return f"{principal} is a member of {federation} and may only read, not issue {kind.__name__}"
    return f"role {role} may not issue {kind.__name__} ({principal})"


def _find(principal: str, admins: list[AdminSpec]) -> AdminSpec | None:
    wanted = principal.strip().lower()
    return next((a for a in admins if a.email.lower() == wanted), None)


def _own_org(
    principal: str, admin: AdminSpec, command: Command, site_orgs: Mapping[str, str]
) -> str | None:
    site = _site_of(command)
    org = site_orgs.get(site) if site else None
    if org is None and isinstance(command, c.RenewCertificate):
        return (f"org_admin {principal} may renew only the certificates of {admin.org}'s sites; "
                f"{site} is not a site of the federation")
    if org is None:
        return f"site {site} is not part of the federation, so org_admin {principal} may not act on it"
    if org != admin.org:
        return (
            f"org_admin {principal} of {admin.org} may only act on sites of {admin.org}; "
            f"{site} belongs to {org}"
        )
    return None


def _site_of(command: Command) -> str | None:
    """The site a command acts on (a renewal's participant may be a site, or not)."""
    if isinstance(command, c.RenewCertificate):
        return command.participant
    return getattr(command, "site", None)


@dataclass(frozen=True)
class FederationAccess:
    """What a service knows about one federation's access rules."""

    admins: list[AdminSpec]
    site_orgs: dict[str, str] = field(default_factory=dict)


#: a service's view of a federation: None when it does not know the federation
AccessLookup = Callable[[str], FederationAccess | None]


#: command_authorizer's answer when the service does not know the federation: never a pass
UNKNOWN_FEDERATION = "the federation is not known here"


def acting_person(envelope: Envelope) -> str | None:
    """Whose authority a command carries: its signer when that is a person; for a command a
    service sent on someone's behalf (auto-deploy), that person."""
    issuer = envelope.issued_by or ""
    if issuer and ":" not in issuer:  # persons are emails; others are "kind:name"
        return issuer
    return envelope.on_behalf_of


def command_authorizer(lookup: AccessLookup) -> Callable[[Command, Envelope], str | None]:
    """A runtime hook: (command, envelope) -> refusal reason, UNKNOWN_FEDERATION, or None.

    CreateFederation is checked against its own admin list (whoever creates a federation
    must name themselves its project_admin)."""

    def check(command: Command, envelope: Envelope) -> str | None:
        federation = envelope.federation or getattr(command, "federation", None)
        access = lookup(federation) if federation else None
        person = acting_person(envelope)
        if access is None:
            if isinstance(command, c.CreateFederation):
                return authorize(person, command, [], {})
            return UNKNOWN_FEDERATION
        return authorize(person, command, access.admins, access.site_orgs)

    return check
