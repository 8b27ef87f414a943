"""`arcflare job submit | list | abort` against a running job-controller (fake FLARE admin)."""
from __future__ import annotations

import json
from pathlib import Path

from arcflare.cli.main import app
from arcflare.contracts.events import FederationProvisioned
from arcflare.job_controller.adapters.flare_admin import JobView
from arcflare.job_controller.bootstrap import bootstrap
from arcflare.job_controller.settings import JobControllerSettings
from jc_fakes import ADMINS, CA, FakeFlareAdmin
from typer.testing import CliRunner

from tests.support.signing import as_provisioner


class FinishingAdmin(FakeFlareAdmin):
    """Jobs finish as soon as they are asked about."""

    def job(self, job_id: str) -> JobView:
        return JobView(job_id, "lr", "FINISHED:COMPLETED", duration_s=1.5)


def last_json(stdout: str):
    """The command's JSON line; the service's threads may log to the same captured stdout."""
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith(("{", "[")):
            return json.loads(line)
    raise AssertionError(f"no JSON in {stdout!r}")


def test_submit_wait_then_list_shows_the_finished_job(tmp_path: Path) -> None:
    admin = FinishingAdmin(["site-1", "site-2"])
    settings = JobControllerSettings(data_dir=tmp_path, job_poll_interval_s=0.1, status_poll_interval_s=0)
    svc = bootstrap(settings, admin_factory=lambda fed: admin)
    as_provisioner(svc, FederationProvisioned(
            federation="fed", server_endpoint="localhost:1", server_kit_ref="file:/s",
            admin_kit_ref="file:/kits/admin", admin_name="a@b.org", sites=["site-1", "site-2"],
            ca_fingerprint=CA, admins=ADMINS))
    svc.start()
    runner = CliRunner()
    try:
        submitted = runner.invoke(app, [
            "job", "submit", "fed", "--recipe", "fedavg-logreg", "--param", "rounds=2",
            "--param", "lr=0.3", "--name", "lr", "--wait", "--timeout", "60", "--json",
            "--data-dir", str(tmp_path)])
        listed = runner.invoke(app, ["job", "list", "fed", "--json", "--data-dir", str(tmp_path)])
    finally:
        svc.stop()

    assert submitted.exit_code == 0, submitted.output
    result = last_json(submitted.stdout)
    assert result["completed"]["payload"]["status"] == "FINISHED:COMPLETED"
    assert result["submitted"]["payload"]["rounds"] == 2
    rows = last_json(listed.stdout)
    assert [(r["name"], r["status"]) for r in rows] == [("lr", "FINISHED:COMPLETED")]


def test_submit_without_path_or_recipe_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["job", "submit", "fed", "--data-dir", str(tmp_path)])

    assert result.exit_code == 2
    assert "either a job PATH or --recipe" in result.output
