"""The authorization policy, role by role, for every command in the catalogue."""
from __future__ import annotations

import pytest
from arcflare.contracts import commands as c
from arcflare.contracts.authz import (
    UNKNOWN_FEDERATION,
    FederationAccess,
    authorize,
    command_authorizer,
)
from arcflare.contracts.base import Command, message_types
from arcflare.contracts.envelope import Envelope

FED = "hospitals"
ADMINS = [
    c.AdminSpec(email="owner@consortium.org", org="consortium", role="project_admin"),
    c.AdminSpec(email="it@north.org", org="north", role="org_admin"),
    c.AdminSpec(email="scientist@north.org", org="north", role="lead"),
    c.AdminSpec(email="viewer@south.org", org="south", role="member"),
]
SITE_ORGS = {"north-1": "north", "south-1": "south"}
PRINCIPAL = {a.role: a.email for a in ADMINS}


def own_site_commands(site: str) -> list[Command]:
    return [
        c.DeploySite(federation=FED, site=site),
        c.StopSite(federation=FED, site=site),
        c.RestartSite(federation=FED, site=site),
        c.RestartSiteClient(federation=FED, site=site),
        c.TailSiteLogs(federation=FED, site=site),
        c.RenewCertificate(federation=FED, participant=site),
    ]


def every_command() -> dict[str, Command]:
    """One instance of every command type, keyed by a readable id."""
    made: list[Command] = [
        c.CreateFederation(
            name=FED, sites=[c.SiteSpec(name="north-1", org="north")], admins=ADMINS
        ),
        c.AddSite(federation=FED, site="east-1", org="east"),
        c.RemoveSite(federation=FED, site="south-1"),
        c.DeployServer(federation=FED),
        c.TeardownFederation(federation=FED),
        c.SubmitJob(federation=FED, name="fedavg", package=c.RecipePackage(recipe="numpy-fedavg")),
        c.AbortJob(federation=FED, job_id="job-1"),
        c.RefreshFederationStatus(federation=FED),
        *own_site_commands("north-1"),
        *own_site_commands("south-1"),
        c.RenewCertificate(federation=FED, participant="server"),
        c.RenewCertificate(federation=FED, participant="owner@consortium.org"),
    ]
    return {f"{type(m).__name__}:{getattr(m, 'site', None) or getattr(m, 'participant', '')}": m
            for m in made}


COMMANDS = every_command()

# The policy as a table: which command ids each role may issue (everything else is refused).
ALLOWED = {
    "project_admin": set(COMMANDS),
    "org_admin": {k for k, m in COMMANDS.items()
                  if k.endswith(":north-1") and not isinstance(m, (c.AddSite, c.RemoveSite))},
    "lead": {"SubmitJob:", "AbortJob:", "RefreshFederationStatus:",
             "TailSiteLogs:north-1", "TailSiteLogs:south-1"},
    "member": set(),
}


def test_every_command_type_is_covered_by_the_table() -> None:
    declared = {t for t in message_types().values() if issubclass(t, Command)}

    assert declared == {type(m) for m in COMMANDS.values()}


@pytest.mark.parametrize("role", list(ALLOWED))
@pytest.mark.parametrize("command_id", list(COMMANDS))
def test_role_may_issue_exactly_its_commands(role: str, command_id: str) -> None:
    reason = authorize(PRINCIPAL[role], COMMANDS[command_id], ADMINS, SITE_ORGS)

    if command_id in ALLOWED[role]:
        assert reason is None
    else:
        assert reason, f"{role} must not issue {command_id}"


def test_org_admin_refusal_names_the_other_org() -> None:
    reason = authorize(PRINCIPAL["org_admin"], c.StopSite(federation=FED, site="south-1"),
                       ADMINS, SITE_ORGS)

    assert reason is not None and "south-1 belongs to south" in reason


def test_org_admin_may_not_act_on_an_unknown_site() -> None:
    reason = authorize(PRINCIPAL["org_admin"], c.DeploySite(federation=FED, site="ghost"),
                       ADMINS, SITE_ORGS)

    assert reason is not None and "not part of the federation" in reason


def test_member_refusal_says_it_may_only_read() -> None:
    reason = authorize(PRINCIPAL["member"], c.RefreshFederationStatus(federation=FED),
                       ADMINS, SITE_ORGS)

    assert reason is not None and "may only read" in reason


def test_a_stranger_is_refused_everything() -> None:
    for command in COMMANDS.values():
        reason = authorize("stranger@elsewhere.org", command, ADMINS, SITE_ORGS)
        assert reason is not None and "is not an admin" in reason


def test_a_missing_principal_is_refused() -> None:
    assert authorize(None, c.DeployServer(federation=FED), ADMINS, SITE_ORGS)
    assert authorize("", c.DeployServer(federation=FED), ADMINS, SITE_ORGS)


def test_principal_email_matches_case_insensitively() -> None:
    assert authorize("Owner@Consortium.org", c.DeployServer(federation=FED), ADMINS, {}) is None


def test_create_federation_is_checked_against_its_own_admin_list() -> None:
    create = COMMANDS["CreateFederation:"]

    assert authorize(PRINCIPAL["project_admin"], create, [], {}) is None
    assert authorize(PRINCIPAL["lead"], create, [], {}) is not None
    assert authorize("stranger@elsewhere.org", create, [], {}) is not None


def test_hook_uses_the_federation_access_of_the_envelope() -> None:
    access = {FED: FederationAccess(admins=ADMINS, site_orgs=SITE_ORGS)}
    check = command_authorizer(access.get)
    stop = c.StopSite(federation=FED, site="north-1")

    allowed = check(stop, Envelope.wrap(stop, issued_by=PRINCIPAL["org_admin"]))
    refused = check(stop, Envelope.wrap(stop, issued_by=PRINCIPAL["lead"]))

    assert allowed is None
    assert refused is not None and "StopSite" in refused


def test_an_unknown_federation_is_never_a_pass_but_creation_is_checked() -> None:
    check = command_authorizer(lambda name: None)
    create = COMMANDS["CreateFederation:"]
    stop = c.StopSite(federation="unknown", site="north-1")

    assert check(stop, Envelope.wrap(stop, issued_by="anyone@x.org")) is UNKNOWN_FEDERATION
    assert check(create, Envelope.wrap(create, issued_by=PRINCIPAL["project_admin"])) is None
    assert check(create, Envelope.wrap(create, issued_by="anyone@x.org")) is not None
