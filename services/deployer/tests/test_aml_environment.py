"""deploy/aml/ as Azure ML and conda read it, and the live tier against a real workspace."""
from __future__ import annotations

import os
import sys
from importlib.metadata import version

import pytest
import yaml
from arcflare.contracts.fields import ComputeSpec
from arcflare.deployer.compute import DeploymentError, Target
from arcflare.deployer.settings import DeployerSettings
from azure.ai.ml import load_environment

AML = DeployerSettings().aml_environment_context
LIVE_VARS = ("ARCFLARE_TEST_AML_SUBSCRIPTION", "ARCFLARE_TEST_AML_RESOURCE_GROUP",
             "ARCFLARE_TEST_AML_WORKSPACE")


def test_the_environment_definition_builds_from_this_folder_under_the_default_name():
    environment = load_environment(AML / "environment.yml")

    assert environment.name == DeployerSettings().aml_environment
    assert (AML / environment.build.path).resolve() == AML.resolve()
    assert environment.build.dockerfile_path == "Dockerfile"


def test_the_image_installs_the_conda_spec_with_nvflare_and_arcflare():
    dockerfile = (AML / "Dockerfile").read_text()
    conda = yaml.safe_load((AML / "conda.yml").read_text())
    pip = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))

    assert "COPY conda.yml" in dockerfile and "conda env create -n arcflare" in dockerfile
    assert "/opt/miniconda/envs/arcflare/bin" in dockerfile  # python3 for sub_start.sh
    assert f"nvflare=={version('nvflare')}" in pip
    assert f"arcflare=={version('arcflare')}" in pip
    assert "--find-links /tmp/arcflare/wheels" in pip
    assert f"python={sys.version_info.major}.{sys.version_info.minor}" in conda["dependencies"]


@pytest.mark.aml_live
@pytest.mark.skipif(not all(os.environ.get(v) for v in LIVE_VARS),
                    reason=f"set {', '.join(LIVE_VARS)} for the live Azure ML tier")
def test_live_a_compute_that_does_not_exist_is_reported_without_submitting():
    from arcflare.deployer.adapters.azureml import AzureMLCompute
    from azure.ai.ml import MLClient
    from azure.identity import DefaultAzureCredential

    ml = MLClient(DefaultAzureCredential(), os.environ[LIVE_VARS[0]], os.environ[LIVE_VARS[1]],
                  os.environ[LIVE_VARS[2]])
    compute = AzureMLCompute(ml, environment="arcflare-nvflare", environment_context=AML,
                             workspace=os.environ[LIVE_VARS[2]])
    target = Target("arcflarelive", "site-1", "azureml:arcflare-live-kit:1",
                    ComputeSpec(backend="azureml", compute="arcflare-no-such-compute"))

    with pytest.raises(DeploymentError, match="does not exist in Azure ML workspace"):
        compute.deploy(target)
    assert compute.observe(compute._placement(target, "arcflare-no-such-job", adopted=False)
                           ).status == "exited"
