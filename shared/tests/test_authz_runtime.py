"""The policy enforced through the runtime's authorize hook: refusals become
CommandRejected(unauthorized) and the handler never runs."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from arcflare.bus import connect
from arcflare.client import Client
from arcflare.contracts import commands as c
from arcflare.contracts import events as e
from arcflare.contracts.authz import FederationAccess, command_authorizer
from arcflare.runtime import Consumer, Rejected, Service, Settings, StateStore, UnitOfWork

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


def authorize(envelope, command, *, uow) -> None:
    refusal = command_authorizer(ACCESS.get)(command, envelope)
    if refusal:
        raise Rejected("unauthorized", refusal)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    settings = Settings(data_dir=tmp_path / "data")
    probe = Service(
        name="authz-probe", settings=settings, bus=connect(settings),
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
        assert outcome.payload["reason"] == "unauthorized"
        assert principal in outcome.payload["detail"]
