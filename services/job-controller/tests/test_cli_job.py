"""`arcflare job submit | list | abort` against a running job-controller (fake FLARE admin)."""
from __future__ import annotations

import json
import time
from pathlib import Path

from arcflare.cli.main import app
from arcflare.job_controller.adapters.flare_admin import JobView
from arcflare.job_controller.bootstrap import bootstrap
from arcflare.job_controller.settings import JobControllerSettings
from jc_fakes import FakeFlareAdmin, provisioned
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


def running_service(tmp_path: Path, admin: FakeFlareAdmin):
    settings = JobControllerSettings(data_dir=tmp_path, job_poll_interval_s=0.1, status_poll_interval_s=0)
    svc = bootstrap(settings, admin_factory=lambda fed: admin)
    as_provisioner(svc, provisioned())
    svc.start()
    return svc


def test_submit_wait_then_list_shows_the_finished_job(tmp_path: Path) -> None:
    svc = running_service(tmp_path, FinishingAdmin(["site-1", "site-2"]))
    runner = CliRunner()
    try:
        submitted = runner.invoke(app, [
            "job", "submit", "fed", "--recipe", "fedavg-logreg", "--param", "rounds=2",
            "--param", "lr=0.3", "--name", "lr", "--wait", "--timeout", "60", "--json",
            "--data-dir", str(tmp_path)])
        listed = runner.invoke(app, ["job", "list", "fed", "--json", "--data-dir", str(tmp_path)])
        job_id = last_json(submitted.stdout)["completed"]["payload"]["job_id"]
        fetched = runner.invoke(app, ["job", "result", "fed", job_id, "--out",
                                      str(tmp_path / "mine"), "--data-dir", str(tmp_path)])
    finally:
        svc.stop()

    assert submitted.exit_code == 0, submitted.output
    result = last_json(submitted.stdout)
    assert result["completed"]["payload"]["status"] == "FINISHED:COMPLETED"
    assert result["submitted"]["payload"]["rounds"] == 2
    rows = last_json(listed.stdout)
    assert [(r["name"], r["status"]) for r in rows] == [("lr", "FINISHED:COMPLETED")]
    assert fetched.exit_code == 0, fetched.output
    assert json.loads((tmp_path / "mine" / "meta.json").read_text())["job_id"] == job_id


def test_a_job_waiting_for_clients_is_listed_and_aborted_by_its_submit_id(tmp_path: Path) -> None:
    svc = running_service(tmp_path, FakeFlareAdmin(clients=["site-1"]))
    runner = CliRunner()
    data = ["--json", "--data-dir", str(tmp_path)]
    try:
        sent = runner.invoke(app, ["job", "submit", "fed", "--recipe", "fedavg-logreg", "--name", "lr",
                                   "--min-clients", "2", *data])
        submit_id = last_json(sent.stdout)["command_id"]
        waiting = wait_until(lambda: [r for r in last_json(runner.invoke(
            app, ["job", "list", "fed", *data]).stdout) if r.get("connected") == ["site-1"]], timeout=10)
        aborted = runner.invoke(app, ["job", "abort", "fed", submit_id, "--wait", "--timeout", "10", *data])
        listed = runner.invoke(app, ["job", "list", "fed", *data])
    finally:
        svc.stop()

    assert [(r["job_id"], r["status"], r["min_clients"]) for r in waiting] == [
        (submit_id, "WAITING_FOR_CLIENTS", 2)]
    assert aborted.exit_code == 0, aborted.output
    assert last_json(aborted.stdout)["outcome"]["payload"]["status"] == "FINISHED:ABORTED"
    assert [(r["job_id"], r["status"]) for r in last_json(listed.stdout)] == [(submit_id, "FINISHED:ABORTED")]


def test_submit_wait_ends_with_the_reason_when_the_clients_do_not_come(tmp_path: Path) -> None:
    svc = running_service(tmp_path, FakeFlareAdmin(clients=[]))
    try:
        result = CliRunner().invoke(app, [
            "job", "submit", "fed", "--recipe", "fedavg-logreg", "--clients-timeout", "1", "--wait",
            "--timeout", "30", "--data-dir", str(tmp_path)])
    finally:
        svc.stop()

    assert result.exit_code == 1
    assert "JobFailed: clients_timeout; only 0 of min_clients=1" in " ".join(result.output.split())


def wait_until(probe, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := probe():
            return found
        time.sleep(0.1)
    raise TimeoutError(f"nothing within {timeout} s")


def test_submit_without_path_or_recipe_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["job", "submit", "fed", "--data-dir", str(tmp_path)])

    assert result.exit_code == 2
    assert "either a job PATH or --recipe" in result.output
