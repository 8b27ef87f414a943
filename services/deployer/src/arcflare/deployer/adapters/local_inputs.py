"""A local site's data inputs: checked before its client starts, then bound to it.

Each input becomes ARCFLARE_INPUT_<NAME> = its folder in the client's environment, which
NVFlare passes on to the job processes it starts. The check only looks (exists, is a
folder, may be listed and read by the deployer's user): it never reads the data.
"""
from __future__ import annotations

import os
from pathlib import Path

from arcflare.contracts.fields import DataInput, input_variable
from arcflare.deployer.compute import DeploymentError, Target


def bound_inputs(target: Target) -> dict[str, str]:
    """Input name -> folder; DeploymentError naming the first input that cannot be bound."""
    return {item.name: _readable_folder(target.name, item) for item in target.data}


def input_environment(folders: dict[str, str]) -> dict[str, str]:
    return {input_variable(name): folder for name, folder in folders.items()}


def _readable_folder(site: str, item: DataInput) -> str:
    if item.kind != "path":
        raise DeploymentError(
            f"{site}: data input {item.name!r} is a {item.kind}, which only an Azure ML job can "
            "mount; the local backend binds folders: give the input a path"
        )
    folder = Path(item.path)
    where = f"{site}: data input {item.name!r}: {folder}"
    if not folder.exists():
        raise DeploymentError(
            f"{where} does not exist on this machine; create or mount it, or fix the site's "
            "data in the federation spec"
        )
    if not folder.is_dir():
        raise DeploymentError(f"{where} is not a folder; a data input names a folder")
    if not os.access(folder, os.R_OK | os.X_OK):
        raise DeploymentError(
            f"{where} cannot be read by user {os.getuid()} (the deployer's, whose processes "
            "train on it); grant read and list permission"
        )
    return str(folder)
