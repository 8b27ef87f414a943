"""The azureml compute adapter driven through a fake MLClient at the port boundary, alone
and inside the deployer service (events out of job status)."""
from __future__ import annotations

from pathlib import Path

import pytest
from arcflare.contracts.commands import DeployServer, DeploySite, StopSite
from arcflare.contracts.fields import ComputeSpec
from arcflare.deployer.compute import DeploymentError, Target
from arcflare.deployer.settings import DeployerSettings
from arcflare.deployer.watcher import check_deployments
from dep_fake_ml import ARC, FakeMLClient, aml_deployer, compute_with, provision_events

AML_CONTEXT = DeployerSettings().aml_environment_context


def site(generation: int = 1, compute: ComputeSpec = ARC) -> Target:
    return Target("fed1", "hospital-a", "azureml:kit-fed1-hospital-a:1", compute,
                  generation=generation)


def test_deploy_submits_once_and_a_repeat_adopts_the_job():
    ml = FakeMLClient({"arc-hospital-a"}, {"arcflare-nvflare": "7"})
    compute = compute_with(ml)

    first = compute.deploy(site())
    again = compute.deploy(site())

    assert len(ml.jobs.submitted) == 1
    assert first.handle == again.handle == "arcflare-fed1-hospital-a-1"
    assert again.adopted and not first.ready
    assert ml.jobs.submitted[0]["properties"]["environmentId"] == "azureml:arcflare-nvflare:7"


def test_a_finished_job_under_the_name_moves_to_the_next_generation():
    ml = FakeMLClient({"arc-hospital-a"}, {"arcflare-nvflare": "7"})
    compute = compute_with(ml)
    compute.deploy(site())
    ml.jobs.jobs["arcflare-fed1-hospital-a-1"].status = "Failed"

    placement = compute.deploy(site())

    assert placement.handle == "arcflare-fed1-hospital-a-2" and placement.generation == 2


def test_a_missing_compute_fails_with_the_fix_and_a_retry_after_attaching_it_succeeds():
    ml = FakeMLClient(set(), {"arcflare-nvflare": "7"})
    compute = compute_with(ml)

    with pytest.raises(DeploymentError) as failed:
        compute.deploy(site())
    ml.compute.names.add("arc-hospital-a")
    placement = compute.deploy(site())

    assert "compute 'arc-hospital-a' does not exist in Azure ML workspace ws-test" in \
        failed.value.reason
    assert "attach the Arc cluster" in failed.value.reason
    assert placement.handle == "arcflare-fed1-hospital-a-1" and len(ml.jobs.submitted) == 1


def test_the_environment_is_built_from_deploy_aml_when_absent():
    ml = FakeMLClient({"arc-hospital-a"})

    compute_with(ml).deploy(site())

    (environment,) = ml.environments.created
    assert environment.name == "arcflare-nvflare"
    assert Path(environment.build.path) == AML_CONTEXT
    assert ml.jobs.submitted[0]["properties"]["environmentId"] == "azureml:arcflare-nvflare:1"


def test_a_site_may_name_its_own_environment():
    ml = FakeMLClient({"arc-hospital-a"})
    spec = ComputeSpec(backend="azureml", compute="arc-hospital-a", environment="site-env:2")

    compute_with(ml).deploy(site(compute=spec))

    assert ml.environments.created == []
    assert ml.jobs.submitted[0]["properties"]["environmentId"] == "azureml:site-env:2"


def test_observe_maps_status_and_stop_cancels():
    ml = FakeMLClient({"arc-hospital-a"}, {"arcflare-nvflare": "7"})
    compute = compute_with(ml)
    placement = compute.deploy(site())
    statuses = []
    for status in ("Queued", "Running", "Failed"):
        ml.jobs.jobs[placement.handle].status = status
        statuses.append(compute.observe(placement).status)
    ml.jobs.jobs[placement.handle].status = "Running"

    compute.stop(placement)
    compute.stop(placement)

    assert statuses == ["starting", "running", "failed"]
    assert ml.jobs.cancelled == [placement.handle]
    assert compute.expected_exit(placement)
    assert compute.observe(placement).status == "exited"


@pytest.fixture
def aml_service(data_dir: Path):
    with aml_deployer(data_dir) as service:
        yield service


def test_job_status_becomes_deployment_events_for_the_request(tmp_path, aml_service):
    svc, client, ml, computes = aml_service
    provision_events(client, tmp_path)
    svc.drain(timeout=10)

    server_id = client.send(DeployServer(federation="fedaml"))
    site_id = client.send(DeploySite(federation="fedaml", site="hospital-a"))
    svc.drain(timeout=10)
    ml.jobs.jobs["arcflare-fedaml-server-1"].status = "Running"
    ml.jobs.jobs["arcflare-fedaml-hospital-a-1"].status = "Failed"
    check_deployments(svc.state, computes)
    svc.drain(timeout=10)

    server = client.wait(server_id, timeout=10)
    failed = client.wait(site_id, timeout=10)
    assert server.type == "ServerDeployed"
    assert server.payload["handle"] == "arcflare-fedaml-server-1"
    assert server.payload["endpoint"] == "server.example.org:8002"
    assert failed.type == "DeploymentFailed" and failed.payload["target"] == "hospital-a"
    assert "arcflare-fedaml-hospital-a-1 is Failed" in failed.payload["reason"]

    retry_id = client.send(DeploySite(federation="fedaml", site="hospital-a"))
    svc.drain(timeout=10)
    ml.jobs.jobs["arcflare-fedaml-hospital-a-2"].status = "Running"
    check_deployments(svc.state, computes)
    svc.drain(timeout=10)
    stop_id = client.send(StopSite(federation="fedaml", site="hospital-a"))
    svc.drain(timeout=10)

    assert client.wait(retry_id, timeout=10).type == "SiteDeployed"
    assert client.wait(stop_id, timeout=10).payload["reason"] == "requested"
    assert ml.jobs.cancelled == ["arcflare-fedaml-hospital-a-2"]
