"""`arcflare federation create` and `arcflare site add|remove` against a running provisioner."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from arcflare.cli.federation import load_spec
from arcflare.cli.main import app
from arcflare.provisioner.bootstrap import bootstrap
from typer.testing import CliRunner

from .conftest import make_settings

EXAMPLE = Path(__file__).resolve().parents[3] / "deploy" / "examples" / "federation.yaml"


@pytest.fixture
def running(tmp_path):
    settings = make_settings(tmp_path / "data", issued_by="admin@arcflare.local")
    service = bootstrap(settings)
    service.start()
    try:
        yield settings
    finally:
        service.stop(timeout=10)


def cli(settings, *args: str):
    return CliRunner().invoke(app, [*args, "--data-dir", str(settings.data_dir)])


def last_json(output: str) -> dict:
    """The CLI's JSON line (the in-process service logs to the same stdout)."""
    return json.loads([line for line in output.splitlines() if line.startswith("{")][-1])


def test_example_spec_is_a_valid_federation():
    spec = load_spec(EXAMPLE)

    assert spec.name == "hospitals" and [s.name for s in spec.sites] == ["site-1", "site-2"]


def test_create_add_remove_with_wait(running):
    created = cli(running, "federation", "create", str(EXAMPLE), "--wait", "--json")
    added = cli(running, "site", "add", "hospitals", "site-3", "--org", "hospital_c", "--wait",
                "--json")
    removed = cli(running, "site", "remove", "hospitals", "site-3", "--wait")

    assert created.exit_code == 0, created.output
    assert last_json(created.stdout)["outcome"]["type"] == "FederationProvisioned"
    assert added.exit_code == 0, added.output
    assert last_json(added.stdout)["outcome"]["payload"]["site"] == "site-3"
    assert removed.exit_code == 0, removed.output


def test_a_rejection_exits_1_with_the_reason(running):
    result = cli(running, "site", "add", "nowhere", "site-1", "--org", "h1", "--wait")

    assert result.exit_code == 1
    assert "not_found" in result.output


def test_a_bad_spec_file_is_refused_before_sending(running, tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text(EXAMPLE.read_text().replace("site-2", "site two"))

    result = cli(running, "federation", "create", str(spec), "--wait")

    assert result.exit_code == 2
    assert "sites.1.name" in result.output


def test_renew_admin_with_wait_prints_the_new_certificate(running):
    cli(running, "federation", "create", str(EXAMPLE), "--wait")

    result = cli(running, "federation", "renew-admin", "hospitals", "admin@arcflare.local",
                 "--wait", "--json")

    assert result.exit_code == 0, result.output
    answer = last_json(result.stdout)
    assert answer["renewed"]["type"] == "CertificateRenewed"
    assert answer["renewed"]["payload"]["kind"] == "admin"
    assert answer["roll"] is None  # nothing runs an admin's kit


def test_site_renew_waits_for_the_deployers_roll_and_says_when_none_comes(running):
    cli(running, "federation", "create", str(EXAMPLE), "--wait")

    result = cli(running, "site", "renew", "hospitals", "site-1", "--wait", "--timeout", "3")

    assert result.exit_code == 1
    assert "new certificate" in result.output
    assert "the deployer did not roll site-1 within 3 s" in result.output


def test_renewing_an_unknown_site_exits_1_with_the_reason(running):
    cli(running, "federation", "create", str(EXAMPLE), "--wait")

    result = cli(running, "site", "renew", "hospitals", "site-9", "--wait")

    assert result.exit_code == 1
    assert "not_found" in result.output and "site-9 is not a participant" in result.output
