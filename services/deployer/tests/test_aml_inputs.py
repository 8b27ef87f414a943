"""A site's data inputs in its Azure ML command job: the serialized entity (REST body, and
YAML read back through azure-ai-ml's own job schema), the command's input check run by bash,
the compute check for claims, and a live tier against a real workspace."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from arcflare.contracts.fields import ComputeSpec, PathInput, PvcInput, UriInput
from arcflare.deployer.adapters.aml_inputs import MISSING_INPUT_EXIT
from arcflare.deployer.adapters.aml_jobs import START, participant_job
from arcflare.deployer.compute import DeploymentError, Target
from azure.ai.ml import load_job
from dep_fake_ml import FakeMLClient, compute_with

ENV = "azureml:arcflare-nvflare:3"
ARC = ComputeSpec(backend="azureml", compute="arc-st-marys")
IMAGING = UriInput(name="imaging", uri="azureml://datastores/st_marys/paths/imaging/")
LABS = UriInput(name="labs-2024", uri="azureml:labs-2024:3", mode="download")
CT = PvcInput(name="ct-scans", pvc="ct-scans", mount_path="/mnt/ct")
NOTES = PathInput(name="notes", path="/mnt/ct/notes")
LIVE_VARS = ("ARCFLARE_TEST_AML_SUBSCRIPTION", "ARCFLARE_TEST_AML_RESOURCE_GROUP",
             "ARCFLARE_TEST_AML_WORKSPACE", "ARCFLARE_TEST_AML_COMPUTE")


def hospital(*data, compute: ComputeSpec = ARC) -> Target:
    return Target("fed1", "st-marys", "azureml:kit-fed1-st-marys:1", compute, data=tuple(data))


def rest_properties(target: Target) -> dict:
    job = participant_job(target, environment=ENV, experiment="arcflare")
    return job._to_job()._to_rest_object().as_dict()["properties"]


def test_uri_inputs_are_uri_folders_mounted_or_downloaded_and_exported_by_the_command():
    props = rest_properties(hospital(IMAGING, LABS))

    assert props["inputs"]["data_imaging"] == {
        "uri": "azureml://datastores/st_marys/paths/imaging/", "mode": "ReadOnlyMount",
        "jobInputType": "uri_folder"}
    assert props["inputs"]["data_labs_2024"] == {
        "uri": "azureml:labs-2024:3", "mode": "Download", "jobInputType": "uri_folder"}
    assert props["inputs"]["kit"]["mode"] == "Download"  # the kit's own input is untouched
    lines = props["command"].splitlines()
    assert lines[:2] == ['export ARCFLARE_INPUT_IMAGING="${{inputs.data_imaging}}"',
                         'export ARCFLARE_INPUT_LABS_2024="${{inputs.data_labs_2024}}"']
    assert lines[-1] == START
    assert not any(k.startswith("ARCFLARE_INPUT_") for k in props["environmentVariables"])


def test_claims_and_paths_are_variables_naming_their_mount_path_and_add_no_job_input():
    props = rest_properties(hospital(CT, NOTES))

    assert set(props["inputs"]) == {"kit"}
    assert props["environmentVariables"]["ARCFLARE_INPUT_CT_SCANS"] == "/mnt/ct"
    assert props["environmentVariables"]["ARCFLARE_INPUT_NOTES"] == "/mnt/ct/notes"
    assert props["environmentVariables"]["NVFL_WORKSPACE"]


def test_a_site_without_data_runs_the_kit_as_before():
    assert rest_properties(hospital())["command"] == START


def test_the_job_reads_back_through_azure_ai_ml_s_own_command_job_schema(tmp_path: Path):
    job = participant_job(hospital(IMAGING, LABS, CT, NOTES), environment=ENV,
                          experiment="arcflare")
    job._to_job().dump(tmp_path / "job.yml")

    loaded = load_job(tmp_path / "job.yml")  # validates against CommandJobSchema

    assert loaded.type == "command"
    assert {k: (v.type, v.mode) for k, v in loaded.inputs.items()} == {
        "kit": ("uri_folder", "download"), "data_imaging": ("uri_folder", "ro_mount"),
        "data_labs_2024": ("uri_folder", "download")}
    assert loaded.inputs["data_imaging"].path == IMAGING.uri
    assert loaded.environment_variables["ARCFLARE_INPUT_CT_SCANS"] == "/mnt/ct"
    assert loaded.command == job.command


def run_command(target: Target, tmp_path: Path, bound: dict[str, Path]) -> subprocess.CompletedProcess:
    """The job's command as Azure ML runs it: ${{inputs.x}} replaced by the input's local path,
    the environment variables set, and a stand-in kit whose start script prints the env."""
    kit = tmp_path / "kit"
    (kit / "startup").mkdir(parents=True, exist_ok=True)
    (kit / "startup" / "sub_start.sh").write_text("env | grep ^ARCFLARE_INPUT_ | sort\n")
    props = rest_properties(target)
    command = props["command"].replace("${{inputs.kit}}", str(kit))
    for key, folder in bound.items():
        command = command.replace(f"${{{{inputs.{key}}}}}", str(folder))
    env = {"PATH": os.environ["PATH"], **props["environmentVariables"]}
    return subprocess.run(["bash", "-c", command], check=False, env=env, capture_output=True,
                          text=True, timeout=30)


def test_the_command_starts_nvflare_with_every_input_bound(tmp_path: Path):
    imaging, ct = tmp_path / "mnt" / "imaging", tmp_path / "mnt" / "ct"
    imaging.mkdir(parents=True)
    ct.mkdir()
    target = hospital(IMAGING, PvcInput(name="ct-scans", pvc="ct-scans", mount_path=str(ct)))

    ran = run_command(target, tmp_path, {"data_imaging": imaging})

    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == [f"ARCFLARE_INPUT_CT_SCANS={ct}",
                                       f"ARCFLARE_INPUT_IMAGING={imaging}"]


def test_a_claim_that_is_not_mounted_fails_the_job_before_nvflare_naming_the_input(tmp_path):
    imaging = tmp_path / "imaging"
    imaging.mkdir()

    ran = run_command(hospital(IMAGING, CT), tmp_path, {"data_imaging": imaging})

    assert ran.returncode == MISSING_INPUT_EXIT
    assert "data input ct-scans (pvc) is not a readable folder in this job: " \
           "ARCFLARE_INPUT_CT_SCANS=/mnt/ct" in ran.stderr
    assert ran.stdout == ""  # NVFlare never started


def test_a_claim_on_a_compute_that_cannot_mount_it_fails_the_deploy_naming_both():
    ml = FakeMLClient({"arc-st-marys", "cpu-cluster"}, {"arcflare-nvflare": "7"},
                      compute_types={"cpu-cluster": "amlcompute"})
    compute = compute_with(ml)
    on_cluster = hospital(CT, compute=ComputeSpec(backend="azureml", compute="cpu-cluster"))

    with pytest.raises(DeploymentError) as failed:
        compute.deploy(on_cluster)
    placement = compute.deploy(hospital(CT))

    assert "data input 'ct-scans' is a pvc, but compute 'cpu-cluster' is amlcompute" in \
        failed.value.reason
    assert "use a uri input" in failed.value.reason
    assert placement.handle == "arcflare-fed1-st-marys-1"
    assert [j["name"] for j in ml.jobs.submitted] == ["arcflare-fed1-st-marys-1"]


@pytest.mark.aml_live
@pytest.mark.skipif(not all(os.environ.get(v) for v in LIVE_VARS),
                    reason=f"set {', '.join(LIVE_VARS)} for the live Azure ML tier")
def test_live_the_workspace_accepts_a_site_job_with_a_datastore_input(tmp_path: Path):
    from arcflare.deployer.adapters.azureml import AzureMLCompute
    from arcflare.deployer.settings import DeployerSettings
    from azure.ai.ml import MLClient
    from azure.identity import DefaultAzureCredential

    subscription, group, workspace, compute_name = (os.environ[v] for v in LIVE_VARS)
    ml = MLClient(DefaultAzureCredential(), subscription, group, workspace)
    compute = AzureMLCompute(ml, environment="arcflare-nvflare",
                             environment_context=DeployerSettings().aml_environment_context,
                             workspace=workspace)
    kit = tmp_path / "kit"  # uploaded with the job; the job is cancelled before it runs
    (kit / "startup").mkdir(parents=True)
    (kit / "startup" / "fed_client.json").write_text("{}")
    records = "azureml://datastores/workspaceblobstore/paths/arcflare-live/records/"
    target = Target(f"live{os.getpid()}", "site-1", f"file:{kit}",
                    ComputeSpec(backend="azureml", compute=compute_name),
                    data=(UriInput(name="records", uri=records),))

    placement = compute.deploy(target)
    try:
        job = ml.jobs.get(placement.handle)
        assert job.inputs["data_records"].path.rstrip("/").endswith("arcflare-live/records")
        assert job.inputs["data_records"].mode == "ro_mount"
        assert 'export ARCFLARE_INPUT_RECORDS="${{inputs.data_records}}"' in job.command
    finally:
        compute.stop(placement)
