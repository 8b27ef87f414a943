"""`arcflare deploy | stop | teardown` against a running deployer (Azure ML behind a fake
MLClient, so no NVFlare is needed to check the command line's round trip)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from arcflare.cli.main import app
from arcflare.client import Client
from arcflare.deployer.bootstrap import bootstrap
from arcflare.deployer.compute import Computes
from arcflare.trust.local import ensure_local_identities
from dep_fake_ml import FakeMLClient, compute_with, provision_events
from dep_kits import ADMIN
from dep_service import settings
from typer.testing import CliRunner

runner = CliRunner()


@pytest.fixture
def deployer(tmp_path: Path, data_dir: Path):
    ml = FakeMLClient({"arc-hospital-a", "cpu-cluster"}, {"arcflare-nvflare": "7"})
    svc = bootstrap(settings(data_dir), computes=Computes({"azureml": lambda: compute_with(ml)}))
    with Client(svc.settings, issued_by=ADMIN) as client:
        provision_events(client, tmp_path)
    svc.drain(timeout=10)
    svc.start()
    try:
        yield data_dir, ml
    finally:
        svc.stop()


def cli(data_dir: Path, *args: str):
    result = runner.invoke(app, [*args, "--data-dir", str(data_dir), "--json"])
    # the deployer runs in this process and logs to the same stdout the runner captures: a
    # line it logs while the command runs may come after the command's own JSON
    lines = [line for line in result.stdout.strip().splitlines() if line.startswith("{")]
    return result.exit_code, (json.loads(lines[-1]) if lines else {})


def test_deploy_sends_one_command_per_site_and_the_jobs_are_submitted(deployer):
    data_dir, ml = deployer

    code, sent = cli(data_dir, "deploy", "fedaml", "--site", "hospital-a", "--as", ADMIN)

    assert code == 0 and sent["type"] == "DeploySite"
    from dep_service import wait_for
    assert wait_for(lambda: "arcflare-fedaml-hospital-a-1" in ml.jobs.jobs, timeout=30)


def test_wait_reports_failures_and_rejections_with_exit_1(deployer, monkeypatch):
    data_dir, _ = deployer
    from arcflare.runtime import authorization

    monkeypatch.setattr(authorization, "ARRIVAL_GRACE_S", 0.0)  # no waiting for "nofed"
    ensure_local_identities(data_dir, operators=(("intruder@example.org", "elsewhere"),))

    unknown_fed = cli(data_dir, "deploy", "nofed", "--wait", "--timeout", "30", "--as", ADMIN)
    unknown_site = cli(data_dir, "stop", "fedaml", "--site", "nope", "--wait", "--timeout", "30",
                       "--as", ADMIN)
    intruder = cli(data_dir, "deploy", "fedaml", "--wait", "--timeout", "30",
                   "--as", "intruder@example.org")

    assert unknown_fed[0] == 1  # an unknown federation is never a pass
    assert unknown_fed[1]["outcome"]["type"] == "CommandRejected"
    assert unknown_fed[1]["outcome"]["payload"]["reason"] == "Forbidden"
    assert "'nofed' is not known here" in unknown_fed[1]["outcome"]["payload"]["detail"]
    assert unknown_site[0] == 1
    assert unknown_site[1]["outcome"]["payload"]["reason"] == "not_found"
    assert intruder[0] == 1
    assert intruder[1]["outcome"]["payload"]["reason"] == "Forbidden"


def test_teardown_and_stop_without_a_site_tear_the_federation_down(deployer):
    data_dir, _ = deployer

    torn = cli(data_dir, "teardown", "fedaml", "--wait", "--timeout", "30", "--as", ADMIN)
    stopped = cli(data_dir, "stop", "fedaml", "--wait", "--timeout", "30", "--as", ADMIN)

    assert torn[0] == 0 and torn[1]["outcome"]["type"] == "FederationTornDown"
    assert stopped[0] == 0 and stopped[1]["outcome"]["type"] == "FederationTornDown"


def test_a_bad_federation_name_is_a_usage_error_naming_the_field(tmp_path: Path):
    result = runner.invoke(app, ["deploy", "bad name!", "--data-dir", str(tmp_path)])

    assert result.exit_code == 2
    assert "federation" in result.output and "bad name!" in result.output
