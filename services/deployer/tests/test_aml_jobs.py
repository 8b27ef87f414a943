"""The Azure ML job entities, checked in their serialized (REST and YAML) form."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from arcflare.contracts.fields import ComputeSpec
from arcflare.deployer.adapters.aml_jobs import (
    JOB_WORKSPACE,
    environment_ref,
    job_name,
    participant_job,
    run_status,
)
from arcflare.deployer.compute import DeploymentError, Target

ENV = "azureml:arcflare-nvflare:3"


def rest(job) -> dict:
    return job._to_job()._to_rest_object().as_dict()


def test_an_arc_site_job_runs_the_kit_on_the_attached_cluster():
    target = Target("fed1", "hospital-a", "azureml:kit-fed1-hospital-a:2",
                    ComputeSpec(backend="azureml", compute="arc-hospital-a",
                                instance_type="gpu-small"), generation=3)

    body = rest(participant_job(target, environment=ENV, experiment="arcflare"))

    props = body["properties"]
    assert body["name"] == "arcflare-fed1-hospital-a-3"
    assert props["jobType"] == "Command"
    assert props["command"] == "bash ${{inputs.kit}}/startup/sub_start.sh --once"
    assert props["computeId"] == "arc-hospital-a"
    assert props["resources"]["instanceType"] == "gpu-small"
    assert props["environmentId"] == ENV
    assert props["inputs"]["kit"] == {"uri": "azureml:kit-fed1-hospital-a:2", "mode": "Download",
                                      "jobInputType": "uri_folder"}
    assert props["environmentVariables"]["NVFL_WORKSPACE"] == JOB_WORKSPACE
    assert props["experimentName"] == "arcflare-fed1"
    assert props["tags"] == {"arcflare.federation": "fed1", "arcflare.participant": "hospital-a",
                             "arcflare.role": "client", "arcflare.generation": "3"}
    assert props["outputs"] == {}  # the workspace holds the kit's keys: never uploaded


def test_a_cloud_site_on_aml_compute_has_no_instance_type():
    target = Target("fed1", "cloud-1", "azureml:kit-fed1-cloud-1:1",
                    ComputeSpec(backend="azureml", compute="cpu-cluster"))

    props = rest(participant_job(target, environment=ENV, experiment="arcflare"))["properties"]

    assert props["computeId"] == "cpu-cluster"
    assert "instanceType" not in props.get("resources", {})


def test_the_server_job_uploads_a_local_kit_and_says_it_is_the_server(tmp_path: Path):
    kit = tmp_path / "kits" / "fed1" / "server1"
    (kit / "startup").mkdir(parents=True)
    target = Target("fed1", "server", f"file:{kit}",
                    ComputeSpec(backend="azureml", compute="cpu-cluster",
                                instance_type="Standard_D2s_v3"))

    job = participant_job(target, environment=ENV, experiment="arcflare")
    props = rest(job)["properties"]
    job._to_job().dump(tmp_path / "job.yml")
    as_yaml = yaml.safe_load((tmp_path / "job.yml").read_text())

    assert props["inputs"]["kit"]["uri"] == str(kit)
    assert props["tags"]["arcflare.role"] == "server"
    assert as_yaml["type"] == "command" and as_yaml["name"] == "arcflare-fed1-server-1"
    assert as_yaml["compute"].endswith("cpu-cluster")
    assert as_yaml["inputs"]["kit"]["type"] == "uri_folder"


def test_job_names_are_deterministic_per_generation():
    target = Target("fed1", "site-1", "azureml:k:1", generation=1)

    assert job_name(target) == job_name(Target("fed1", "site-1", "azureml:k:1", generation=1))
    assert job_name(target) != job_name(Target("fed1", "site-1", "azureml:k:1", generation=2))


def test_a_site_without_a_compute_name_is_refused_with_the_field_named():
    target = Target("fed1", "site-1", "azureml:k:1", ComputeSpec(backend="azureml"))

    with pytest.raises(DeploymentError, match="compute.compute is required"):
        participant_job(target, environment=ENV, experiment="arcflare")


def test_environment_references_and_status_mapping():
    assert environment_ref("my-env:4") == "azureml:my-env:4"
    assert environment_ref("azureml:my-env@latest") == "azureml:my-env@latest"
    with pytest.raises(DeploymentError, match="compute.environment"):
        environment_ref("not a ref")
    assert [run_status(s) for s in ("Queued", "Running", "Failed", "Canceled", "Weird", None)] \
        == ["starting", "running", "failed", "exited", "unknown", "unknown"]
