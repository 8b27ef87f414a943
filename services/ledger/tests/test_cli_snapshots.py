"""Snapshots of `arcflare status` and `arcflare audit` at 80 and 120 columns.

The real ledger serves a demo-like federation fed through the embedded bus; the real CLI
prints into rich's recording console; the text must equal the files in snapshots/. The
ledger's clock is frozen so that ages read the same every time. When a change of these
outputs is intended:

    ARCFLARE_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest services/ledger/tests/test_cli_snapshots.py -q

then review `git diff services/ledger/tests/snapshots` and commit it.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from arcflare.cli import status as status_command
from arcflare.cli.main import app
from arcflare.contracts import commands as c
from arcflare.contracts import events as e
from arcflare.contracts.envelope import Envelope
from arcflare.ledger import queries
from arcflare.ledger.settings import LedgerSettings
from arcflare.trust.local import DEFAULT_OPERATORS, ensure_local_identities
from typer.testing import CliRunner

from tests.support.snapshots import assert_snapshot, recording_console

from .conftest import FP, T0, outcome
from .ledger_service import publish, serving

SNAPSHOTS = Path(__file__).parent / "snapshots"
FED = "hospitals-3"
ADMIN = "admin@arcflare.local"
HOSPITALS = [("st-marys-london", "st_marys"), ("charite-berlin", "charite"),
             ("karolinska-stockholm", "karolinska")]
#: when the CLI is run: a minute and a half after the last event below
NOW = T0 + timedelta(minutes=3, seconds=30)


def _registered(site: str) -> str:
    return f"Registered with the NVFlare server at localhost:58245 as {site} (project {FED})."


def demo_twice() -> list[Envelope]:
    """`make demo`, `arcflare local down`, then `make demo --keep`: the stack restarts, the
    deployer reports the old server stopped and starts generation 2, one hospital's kit no
    longer matches the server's CA, and the server sits idle after the job. Every event has a
    moment of its own: equal ones would be listed in the order of their random ids."""
    expiry = T0 + timedelta(days=360)
    stream = [outcome(e.FederationProvisioned(
        federation=FED, server_endpoint="localhost:58245", server_kit_ref="k/server",
        admin_kit_ref="k/admin", admin_name=ADMIN, sites=[n for n, _ in HOSPITALS],
        ca_fingerprint=FP, ca_not_after=expiry, server_cert_fingerprint=FP,
        server_not_after=expiry, auto_deploy=True, existing=True,
        admins=[c.AdminSpec(email=ADMIN, org="consortium", role="project_admin")],
    ), "create-2", 100, on_behalf_of=ADMIN)]
    stream += [outcome(e.SiteProvisioned(federation=FED, site=name, org=org, kit_ref=f"k/{name}",
                                         cert_fingerprint=FP, not_after=expiry, existing=True,
                                         deploy=True), "create-2", 100.1 + n / 100,
                       on_behalf_of=ADMIN)
               for n, (name, org) in enumerate(HOSPITALS)]
    stream += [
        outcome(e.SiteStopped(federation=FED, site="server", reason="requested", generation=1),
                None, 99),
        outcome(e.ServerDeployed(federation=FED, endpoint="localhost:58245", backend="local",
                                 handle="5151", generation=2),
                "auto-server-2", 104, on_behalf_of=ADMIN, flow="create-2"),
    ]
    for n, (name, _) in enumerate(HOSPITALS):
        stream.append(outcome(e.SiteDeployed(federation=FED, site=name, backend="local",
                                             handle=f"61{n}", generation=2),
                              f"auto-{name}-2", 101 + n / 10, on_behalf_of=ADMIN,
                              flow="create-2"))
    stream += [
        outcome(e.SiteHeartbeat(federation=FED, site="st-marys-london", status="connected",
                                diagnosis=_registered("st-marys-london"),
                                diagnosis_code="registered"), None, 195),
        outcome(e.SiteHeartbeat(federation=FED, site="charite-berlin", status="connected",
                                diagnosis=_registered("charite-berlin"),
                                diagnosis_code="registered"), None, 198),
        outcome(e.SiteHeartbeat(
            federation=FED, site="karolinska-stockholm", status="misconfigured",
            diagnosis_code="tls_error",
            diagnosis="The TLS handshake with the NVFlare server at localhost:58245 failed "
                      "(self-signed certificate in certificate chain): the site's startup kit "
                      "was not issued by this server's federation; redeploy the site's kit."),
            None, 190),
        outcome(e.FederationStatusObserved(federation=FED, server_status="stopped", clients=[
            e.ClientView(name=n, last_connect_time=T0 + timedelta(seconds=185))
            for n in ("st-marys-london", "charite-berlin")]), None, 188),
        outcome(e.JobWaitingForClients(federation=FED, name="logreg", min_clients=3,
                                       clients_timeout_s=300,
                                       clients_deadline=T0 + timedelta(seconds=410)),
                "submit-2", 110, on_behalf_of=ADMIN),
        outcome(e.JobSubmitted(federation=FED, job_id="4be1c0de-9d55-4f1b-8c2e-61c0ffee0002",
                               name="logreg", sites=["st-marys-london", "charite-berlin"],
                               rounds=5), "submit-2", 112, on_behalf_of=ADMIN),
        outcome(e.JobStatusChanged(federation=FED, job_id="4be1c0de-9d55-4f1b-8c2e-61c0ffee0002",
                                   status="RUNNING"), "submit-2", 113),
        outcome(e.JobCompleted(federation=FED, job_id="4be1c0de-9d55-4f1b-8c2e-61c0ffee0002",
                               name="logreg", status="FINISHED:COMPLETED", duration_s=25.3),
                "submit-2", 137.3),
        outcome(e.CommandRejected(federation=FED, command_type="TeardownFederation",
                                  command_id="teardown-1", reason="unauthorized",
                                  detail="only a project_admin may issue TeardownFederation; "
                                         "lead@charite.de is lead",
                                  claimed_by="lead@charite.de", proven_by="lead@charite.de"),
                "teardown-1", 150, "service:deployer", on_behalf_of="lead@charite.de"),
        # someone without an identity claims to be the admin: the claim is all there is
        outcome(e.CommandRejected(federation=FED, command_type="TeardownFederation",
                                  command_id="teardown-2", reason="Unauthenticated",
                                  detail="the message carries no signature",
                                  claimed_by=ADMIN),
                "teardown-2", 160, "service:deployer", on_behalf_of=ADMIN),
    ]
    return stream


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    settings = LedgerSettings(data_dir=tmp_path_factory.mktemp("snapshots") / "data")
    ensure_local_identities(settings.data_dir, operators=(
        *DEFAULT_OPERATORS, ("lead@charite.de", "charite")))
    publish(settings, demo_twice())
    with pytest.MonkeyPatch.context() as frozen:
        frozen.setattr(queries, "clock", lambda: NOW)
        with serving(settings):
            yield settings.data_dir


CASES = {
    "status": ["status", FED],
    "status-wide": ["status", FED, "--wide"],
    "audit": ["audit", FED],
    "audit-events": ["audit", FED, "--events"],
}


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("case", sorted(CASES))
def test_cli_output_matches_its_snapshot(data_dir: Path, monkeypatch, case: str,
                                         width: int) -> None:
    terminal = recording_console(width)
    monkeypatch.setattr(status_command, "out", terminal)

    result = CliRunner().invoke(app, [*CASES[case], "--data-dir", str(data_dir)],
                                env={"ARCFLARE_LEDGER_URL": ""})

    assert result.exit_code == 0, result.output
    assert_snapshot(SNAPSHOTS / f"{case}-{width}.txt", terminal)
