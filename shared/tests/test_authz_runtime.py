"""The policy enforced through the runtime's authorize hook, on signed commands: refusals
become CommandRejected(Forbidden) and the handler never runs; a claim of someone else's
identity is refused before the policy is even asked (Unauthenticated)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from arcflare.bus import connect
from arcflare.client import Client
from arcflare.contracts import commands as c
from arcflare.contracts import events as e
from arcflare.contracts.authz import FederationAccess
from arcflare.runtime import Consumer, Service, Settings, StateStore, UnitOfWork
from arcflare.runtime.authorization import enforce_policy
from arcflare.trust.local import ensure_local_identities

from tests.support.signing import publish, raw, signer_for

FED = "hospitals"
ADMINS = [
    c.AdminSpec(email="owner@consortium.org", org="consortium", role="project_admin"),
    c.AdminSpec(email="it@north.org", org="north", role="org_admin"),
    c.AdminSpec(email="scientist@north.org", org="north", role="lead"),
    c.AdminSpec(email="viewer@south.org", org="south", role="member"),
]
ACCESS = {FED: FederationAccess(admins=ADMINS, site_orgs={"north-1": "north"})}


def refresh_status(cmd: c.RefreshFederationStatus, *, uow: UnitOfWork) -> None:
    uow.publish(e.FederationStatusObserved(federation=cmd.federation, server_status="started",
                                           clients=[]))


authorize = enforce_policy(lambda db, federation: ACCESS.get(federation))


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    people = [(a.email, a.org) for a in ADMINS] + [("stranger@elsewhere.org", "elsewhere")]
    ensure_local_identities(tmp_path / "data", operators=people)
    settings = Settings(data_dir=tmp_path / "data", retry_backoff_base_s=0.05,
                        retry_backoff_max_s=0.1)
    probe = Service(
        name="job-controller", settings=settings, bus=connect(settings),
        state=StateStore(settings.data_dir / "probe.db"),
        consumers=[Consumer("job-controller",
                            handlers={c.RefreshFederationStatus: refresh_status})],
        authorize=authorize,
    )
    try:
        yield probe
    finally:
        probe.bus.close()


@pytest.mark.parametrize(("principal", "expected"), [
    ("owner@consortium.org", "FederationStatusObserved"),
    ("scientist@north.org", "FederationStatusObserved"),
    ("it@north.org", "CommandRejected"),
    ("viewer@south.org", "CommandRejected"),
    ("stranger@elsewhere.org", "CommandRejected"),
])
def test_each_role_through_the_runtime(service: Service, principal: str, expected: str) -> None:
    with Client(service.settings, issued_by=principal) as client:
        command_id = client.send(c.RefreshFederationStatus(federation=FED))
        service.drain(timeout=30)
        outcome = client.wait(command_id, timeout=30)

    assert outcome.type == expected
    if expected == "CommandRejected":
        assert outcome.payload["reason"] == "Forbidden"
        assert principal in outcome.payload["detail"]
        assert outcome.payload["proven_by"] == principal


def test_a_lead_claiming_to_be_the_project_admin_is_unauthenticated(service: Service) -> None:
    """`--as` cannot lend authority: the signature proves the lead, whatever issued_by says."""
    lead = signer_for(service.settings.data_dir, "scientist@north.org")
    body = c.RefreshFederationStatus(federation=FED).model_dump_json().encode()
    raw(service.bus, "job-controller", body, signer=lead, type_name="RefreshFederationStatus",
        federation=FED, session=FED, issued_by="owner@consortium.org")
    service.drain(timeout=10)

    [dead] = service.bus.peek("job-controller", max_messages=5, sub_queue="deadletter")
    assert dead.dead_letter_reason == "Unauthenticated"
    assert "owner@consortium.org" in dead.dead_letter_error_description
    with Client(service.settings, issued_by="owner@consortium.org") as client:
        rejected = [e for e in client.follow(from_start=True, until_idle=True)
                    if e.type == "CommandRejected"]
    assert [(r.payload["claimed_by"], r.payload["proven_by"]) for r in rejected] == [
        ("owner@consortium.org", "scientist@north.org")]


def test_a_command_for_an_unknown_federation_is_retried_then_forbidden(service: Service,
                                                                        monkeypatch) -> None:
    from arcflare.runtime import authorization

    monkeypatch.setattr(authorization, "ARRIVAL_GRACE_S", 0.0)
    owner = signer_for(service.settings.data_dir, "owner@consortium.org")
    publish(service.bus, owner, c.RefreshFederationStatus(federation="nobody-knows"))
    service.drain(timeout=10)
    with Client(service.settings, issued_by="owner@consortium.org") as client:
        [rejected] = [e for e in client.follow(from_start=True, until_idle=True)
                      if e.type == "CommandRejected"]
    assert rejected.payload["reason"] == "Forbidden"
    assert "not known here" in rejected.payload["detail"]
