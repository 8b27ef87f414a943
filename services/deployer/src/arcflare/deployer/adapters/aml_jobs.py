"""Azure ML command jobs for NVFlare participants: names, entities and status mapping.

Pure functions over azure-ai-ml entities (no service calls), so their serialized
form is tested without a workspace.
"""
from __future__ import annotations

import re
from pathlib import Path

from arcflare.deployer.adapters.aml_inputs import data_inputs, fixed_variables, with_inputs
from arcflare.deployer.compute import DeploymentError, RunStatus, Target
from arcflare.deployer.kits import parse_kit_ref
from azure.ai.ml import Input, command
from azure.ai.ml.constants import AssetTypes, InputOutputModes
from azure.ai.ml.entities import BuildContext, Environment
from azure.ai.ml.entities._builders.command import Command

#: where the job copies its kit and runs: NVFlare's sub_start.sh supports a workspace
#: apart from the (read-only, downloaded) kit through NVFL_WORKSPACE. Not an output:
#: the kit holds private keys, which must not be uploaded with the job's outputs.
JOB_WORKSPACE = "/tmp/arcflare/workspace"
START = "bash ${{inputs.kit}}/startup/sub_start.sh --once"

_STATUS: dict[str, RunStatus] = {
    **dict.fromkeys(("NotStarted", "Queued", "Preparing", "Provisioning", "Starting"),
                    "starting"),
    **dict.fromkeys(("Running", "Finalizing"), "running"),
    **dict.fromkeys(("Failed", "NotResponding"), "failed"),
    **dict.fromkeys(("Completed", "Canceled", "CancelRequested"), "exited"),
}
TERMINAL = {"Completed", "Canceled", "Failed", "NotResponding"}


def job_name(target: Target) -> str:
    """Deterministic per attempt, so a retried deploy finds its job instead of adding one."""
    return f"arcflare-{target.federation}-{target.name}-{target.generation}"


def run_status(aml_status: str | None) -> RunStatus:
    return _STATUS.get(aml_status or "", "unknown")


def environment_ref(name_or_ref: str) -> str:
    """'name:version' or 'name@latest' as the job's environment reference."""
    ref = name_or_ref.removeprefix("azureml:")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+|@latest)", ref):
        raise DeploymentError(
            f"compute.environment {name_or_ref!r} is not an Azure ML environment reference; "
            "use 'name:version' or 'name@latest'"
        )
    return f"azureml:{ref}"


def nvflare_environment(name: str, context: Path) -> Environment:
    """The NVFlare runtime image, built by Azure ML from deploy/aml/ (Dockerfile + conda)."""
    if not (context / "Dockerfile").is_file():
        raise DeploymentError(
            f"the Azure ML environment {name} does not exist and cannot be built: no Dockerfile "
            f"in {context}; set ARCFLARE_AML_ENVIRONMENT_CONTEXT to the deploy/aml folder"
        )
    return Environment(name=name, build=BuildContext(path=str(context)),
                       description="NVIDIA FLARE runtime with the arcflare package (ArcFlare)")


def participant_job(target: Target, *, environment: str, experiment: str) -> Command:
    kit = parse_kit_ref(target.kit_ref)
    if not target.compute.compute:
        raise DeploymentError(
            f"{target.name}: compute.compute is required for backend azureml (the name of an "
            "attached Arc Kubernetes compute or an AML compute cluster)"
        )
    return command(
        name=job_name(target),
        display_name=f"{target.federation} {target.name} #{target.generation}",
        experiment_name=f"{experiment}-{target.federation}",
        description=(f"NVFlare server of federation {target.federation}" if target.role == "server"
                     else f"NVFlare client {target.name} of federation {target.federation}"),
        command=with_inputs(START, target),
        environment=environment,
        environment_variables={"NVFL_WORKSPACE": JOB_WORKSPACE, "PYTHONUNBUFFERED": "1",
                               **fixed_variables(target)},
        inputs={"kit": Input(type=AssetTypes.URI_FOLDER, path=kit.uri,
                             mode=InputOutputModes.DOWNLOAD), **data_inputs(target)},
        compute=target.compute.compute,
        instance_type=target.compute.instance_type,
        tags={"arcflare.federation": target.federation, "arcflare.participant": target.name,
              "arcflare.role": target.role, "arcflare.generation": str(target.generation)},
    )
