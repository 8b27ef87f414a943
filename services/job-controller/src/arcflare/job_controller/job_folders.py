"""From a SubmitJob's package to a checked, decorated job folder under data_dir/jobs/<command id>.

The folder is built in a scratch place and renamed into place, so it is either
complete or absent; a redelivered command reuses it. Built deterministically from
the command, a rebuilt folder has identical content too, as NVFlare's submit
token requires.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

from arcflare.artifacts import ArtifactError, ArtifactStore
from arcflare.artifacts.folders import fetch_folder
from arcflare.contracts.artifacts import GZIP, JOB_PACKAGE, TAR, ZIP
from arcflare.contracts.commands import ArtifactPackage, RecipePackage, SubmitJob
from arcflare.job_controller.decoration import decorate_job
from arcflare.job_controller.packages import Caps, InvalidPackage, check_job_structure, job_root
from arcflare.job_controller.recipes import RECIPES

#: what a job package may be: our deterministic tar.gz, or an archive a person made
PACKAGE_TYPES = frozenset({JOB_PACKAGE, ZIP, TAR, GZIP})


def _stage(cmd: SubmitJob, scratch: Path, caps: Caps, artifacts: ArtifactStore) -> Path:
    package = cmd.package
    if isinstance(package, RecipePackage):
        build = RECIPES.get(package.recipe)
        if build is None:
            known = ", ".join(sorted(RECIPES))
            raise InvalidPackage(f"package.recipe: unknown recipe {package.recipe!r}; built-ins: {known}")
        return build(cmd.name, package.parameters, cmd.min_clients, scratch)
    if not isinstance(package, ArtifactPackage):
        # a path means a file of the sender's machine: never read, wherever this runs
        raise InvalidPackage(
            f"package.kind: {package.kind!r} names a path on the sender's machine, which the "
            "job-controller does not read; submit the job with `arcflare job submit FEDERATION "
            "PATH` or Client.submit_job, which upload it to the artifact store")
    named = f"package.ref {package.ref.locator}"  # every refusal names the reference
    try:
        return fetch_folder(artifacts, package.ref, scratch / "unpacked", area="packages",
                            caps=caps, media_types=PACKAGE_TYPES, what=named, locate=job_root)
    except ArtifactError as exc:
        raise InvalidPackage(f"{named}: {exc.problem}") from None


def _restrict_sites(job: Path, sites: list[str] | None) -> None:
    if not sites:
        return
    meta_path = job / "meta.json"
    meta = json.loads(meta_path.read_text())
    deploy_map = {}
    for app, targets in meta["deploy_map"].items():
        if any(str(t).lower() == "@all" for t in targets):
            targets = ["server", *sites]
        deploy_map[app] = targets
    meta["deploy_map"] = deploy_map
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True))


def folder_name(command_id: str) -> str:
    """A command id as one safe path component: ids come from senders, and "..", "." or
    anything with a separator must never become part of a path."""
    if re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}", command_id):
        return command_id
    return "sha256-" + hashlib.sha256(command_id.encode()).hexdigest()


def prepare_job(
    cmd: SubmitJob, command_id: str, *, data_dir: Path, caps: Caps, bridge: bool,
    artifacts: ArtifactStore, bus: dict | None = None,
) -> Path:
    """bus: where the job's bridge reports (decoration.bridge_bus)."""
    command_id = folder_name(command_id)
    home = data_dir / "jobs" / command_id
    final = home / cmd.name  # NVFlare names the submission after the folder
    if final.is_dir():
        return final
    scratch = data_dir / "jobs" / f".{command_id}.tmp"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        staged = _stage(cmd, scratch / "stage", caps, artifacts)
        check_job_structure(staged)
        _restrict_sites(staged, cmd.sites)
        decorate_job(staged, federation=cmd.federation, bridge=bridge, bus=bus)
        built = scratch / "out" / cmd.name
        built.parent.mkdir()
        staged.rename(built)
        home.parent.mkdir(parents=True, exist_ok=True)
        (scratch / "out").rename(home)
        return final
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def rounds_of(job: Path) -> int | None:
    """num_rounds of the server workflow, when the job says (for progress displays)."""
    for config in sorted(job.glob("*/config/config_fed_server.json")):
        for workflow in json.loads(config.read_text()).get("workflows", []):
            rounds = workflow.get("args", {}).get("num_rounds")
            if isinstance(rounds, int):
                return rounds
    return None
