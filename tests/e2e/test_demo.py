"""The demo end to end, checked where its results live: MLflow and the NVFlare server.

One `arcflare demo --keep` runs for the whole module; the checks then read MLflow's
store and ask the still-running NVFlare server with the FLARE API, so nothing here
takes ArcFlare's own summary for the truth. `arcflare local down` runs in the end.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import psutil
import pytest
from arcflare.client import Client
from arcflare.localstack.demo import ADMIN
from arcflare.runtime.settings import Settings

from tests.e2e.stack import admin_kit, arcflare, local_down, running_under, stack_pids

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

SITES = ["st-marys-london", "charite-berlin", "karolinska-stockholm"]
ROUNDS = 3
FEDERATION = "hospitals-3"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    data = tmp_path_factory.mktemp("demo")
    try:
        done = arcflare("demo", "--data-dir", str(data), "--sites", "3", "--rounds",
                        str(ROUNDS), "--keep", "--json", timeout=360)
        assert done.returncode == 0, f"demo failed:\n{done.stderr[-4000:]}"
        yield data, json.loads(done.stdout)
    finally:
        local_down(data)
        assert running_under(data) == [], "processes left after local down"


@pytest.fixture(scope="module")
def mlflow(demo):
    from mlflow import MlflowClient

    data, _ = demo
    return MlflowClient(f"sqlite:///{data / 'mlflow.db'}")


def test_summary_names_a_completed_job_and_a_model(demo) -> None:
    _, summary = demo
    assert summary["federation"] == FEDERATION
    assert summary["status"] == "FINISHED:COMPLETED"
    assert sorted(s["name"] for s in summary["sites"]) == sorted(SITES)
    assert summary["mlflow"]["model_version"]


def test_mlflow_has_a_parent_run_and_one_child_run_per_site(demo, mlflow) -> None:
    _, summary = demo
    experiment = mlflow.get_experiment_by_name(FEDERATION)
    assert experiment is not None
    runs = mlflow.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert [p.data.tags["job_id"] for p in parents] == [summary["job_id"]]
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(c.data.tags["site"] for c in children) == sorted(SITES)
    for child in children:
        history = mlflow.get_metric_history(child.info.run_id, "accuracy")
        assert sorted(m.step for m in history) == list(range(ROUNDS)), child.data.tags["site"]
        assert all(0.0 <= m.value <= 1.0 for m in history)


def test_mlflow_registered_one_model_version_with_lineage(demo, mlflow) -> None:
    _, summary = demo
    name = summary["mlflow"]["model_name"]
    versions = mlflow.search_model_versions(f"name = '{name}'")
    assert [str(v.version) for v in versions] == [str(summary["mlflow"]["model_version"])]
    tags = versions[0].tags
    assert tags["job_id"] == summary["job_id"]
    assert tags["federation"] == FEDERATION
    assert tags["nvflare_status"] == "FINISHED:COMPLETED"
    assert sorted(tags["sites"].split(",")) == sorted(SITES)
    assert tags["rounds"] == str(ROUNDS)
    assert versions[0].run_id == tags["run_id"]
    assert mlflow.get_run(versions[0].run_id).data.tags["job_id"] == summary["job_id"]
    source = versions[0].source.removeprefix("file://")
    assert Path(source).exists(), source


def test_the_flare_server_lists_exactly_that_job_completed(demo) -> None:
    from nvflare.fuel.flare_api.flare_api import new_secure_session

    data, summary = demo
    session = new_secure_session(ADMIN, str(admin_kit(data, FEDERATION, ADMIN)), timeout=30)
    try:
        jobs = session.list_jobs()
        clients = {c.name for c in session.get_system_info().client_info}
    finally:
        session.close()
    assert [(j["job_id"], j["status"]) for j in jobs] == [
        (summary["job_id"], "FINISHED:COMPLETED")]
    assert clients == set(SITES)


def test_the_site_agents_are_forks_of_one_warm_copy_and_each_reports_its_site(demo) -> None:
    data, _ = demo
    pids = stack_pids(data)
    agents = {name: pid for name, pid in pids.items()
              if name.startswith(f"site-agent-{FEDERATION}-")}

    assert sorted(agents) == sorted(f"site-agent-{FEDERATION}-{s}" for s in SITES)
    assert {psutil.Process(pid).ppid() for pid in agents.values()} == {
        pids["site-agent-forkserver"]}
    assert all(os.getsid(pid) == pid for pid in agents.values())  # a session each
    with Client(Settings(data_dir=data), issued_by=ADMIN) as client:
        connected = {e.payload["site"] for e in client.follow(
            types=["SiteHeartbeat"], federation=FEDERATION, topics=("telemetry",),
            from_start=True, until_idle=True) if e.payload["status"] == "connected"}
    assert connected == set(SITES)


def test_local_up_ps_down_leaves_nothing_running(tmp_path: Path) -> None:
    try:
        up = arcflare("local", "up", "--data-dir", str(tmp_path), "--json", timeout=180)
        assert up.returncode == 0, up.stderr[-3000:]
        ps = json.loads(arcflare("local", "ps", "--data-dir", str(tmp_path), "--json").stdout)
        assert ps["running"] is True
        services = {p["name"]: p for p in ps["processes"]}
        assert set(services) >= {"ledger", "provisioner", "deployer", "job-controller",
                                 "metrics-relay", "alerter"}
        assert all(p["alive"] and p["ready"] for p in services.values()), services
        assert running_under(tmp_path), "psutil sees none of the stack's processes"
    finally:
        down = arcflare("local", "down", "--data-dir", str(tmp_path), timeout=120)
    assert down.returncode == 0, down.stderr[-3000:]
    assert running_under(tmp_path) == []
    after = json.loads(arcflare("local", "ps", "--data-dir", str(tmp_path), "--json").stdout)
    assert after["running"] is False
    assert not any(p["alive"] for p in after["processes"])


def test_a_stack_stopped_and_started_again_reports_its_sites_stopped_not_crashed(demo) -> None:
    data, _ = demo
    local_down(data)
    assert running_under(data) == []
    with Client(Settings(data_dir=data)) as client:
        try:
            up = arcflare("local", "up", "--data-dir", str(data), timeout=180)
            assert up.returncode == 0, up.stderr[-3000:]
            stopped = {}
            for env in client.follow(types=["SiteStopped"], timeout=60):
                stopped[env.payload["site"]] = env.payload["reason"]
                if len(stopped) == len(SITES) + 1:
                    break
        finally:
            local_down(data)
    assert stopped == {**{s: "requested" for s in SITES}, "server": "requested"}
