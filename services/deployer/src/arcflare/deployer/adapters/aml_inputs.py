"""A site's data inputs in its Azure ML command job.

- uri: a job Input (uri_folder, ro_mount or download). The command is where Azure ML
  documents ${{inputs.x}} substitution, so the command exports ARCFLARE_INPUT_<NAME> from it.
- pvc: nothing in the job. Azure ML mounts every claim labelled ml.azure.com/pvc=true into
  each job pod of the compute's namespace at the claim's ml.azure.com/mountpath, so the
  variable is that mount path (the claim must live in the compute's namespace).
- path: a folder inside the job's container (under such a mount); the variable is the path.

Before NVFlare starts, the command checks that every input is a readable folder and fails
the job with exit code 3 naming the input otherwise: the deployer cannot look into a pod.
"""
from __future__ import annotations

from arcflare.contracts.fields import DataInput, input_variable
from arcflare.deployer.compute import Target
from azure.ai.ml import Input
from azure.ai.ml.constants import AssetTypes

#: what a job command exits with when an input is missing (NVFlare itself never uses it)
MISSING_INPUT_EXIT = 3


def job_input_name(item: DataInput) -> str:
    """The job's input key: Azure ML allows letters, digits and '_' ('kit' is the kit's)."""
    return "data_" + item.name.lower().replace("-", "_")


def data_inputs(target: Target) -> dict[str, Input]:
    return {job_input_name(item): Input(type=AssetTypes.URI_FOLDER, path=item.uri, mode=item.mode)
            for item in target.data if item.kind == "uri"}


def fixed_variables(target: Target) -> dict[str, str]:
    """ARCFLARE_INPUT_<NAME> for inputs whose path is known before the job runs."""
    return {input_variable(item.name): item.mount_path if item.kind == "pvc" else item.path
            for item in target.data if item.kind in ("pvc", "path")}


def with_inputs(command: str, target: Target) -> str:
    """The job's command, preceded by the exports of bound inputs and a check of every input."""
    if not target.data:
        return command
    lines = [f'export {input_variable(item.name)}="${{{{inputs.{job_input_name(item)}}}}}"'
             for item in target.data if item.kind == "uri"]
    lines += [_check(item) for item in target.data]
    return "\n".join([*lines, command])


def _check(item: DataInput) -> str:
    variable = input_variable(item.name)
    return (f'[ -d "${variable}" ] && [ -r "${variable}" ] && [ -x "${variable}" ] || '
            f'{{ echo "arcflare: data input {item.name} ({item.kind}) is not a readable folder '
            f'in this job: {variable}=${variable}" >&2; exit {MISSING_INPUT_EXIT}; }}')
