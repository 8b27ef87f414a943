"""The azureml compute: each participant is an Azure ML command job on an attached Arc
Kubernetes compute (a hospital's cluster) or an AML compute cluster (cloud sites).

Jobs are found by their deterministic name, so a deploy repeated after a crash of the
deployer adopts the job it had submitted. Status is polled by the watcher; stop cancels.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from arcflare.deployer.adapters.aml_jobs import (
    TERMINAL,
    environment_ref,
    job_name,
    nvflare_environment,
    participant_job,
    run_status,
)
from arcflare.deployer.compute import Compute, DeploymentError, Observation, Placement, Target
from arcflare.runtime import get_logger
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

log = get_logger("arcflare.deployer.azureml")
#: generations tried past a terminal job before giving up (a loop guard, not a policy)
_MAX_GENERATIONS = 100


class AzureMLCompute(Compute):
    backend = "azureml"

    def __init__(self, ml_client: Any, *, environment: str, environment_context: Path,
                 experiment: str = "arcflare", workspace: str = "") -> None:
        self.ml = ml_client
        self.environment = environment
        self.environment_context = Path(environment_context)
        self.experiment = experiment
        self.workspace = workspace or getattr(ml_client, "workspace_name", "") or "the workspace"
        self._environment_ref: str | None = None
        self._cancelled: set[str] = set()

    @classmethod
    def from_settings(cls, s: Any) -> AzureMLCompute:
        from azure.ai.ml import MLClient
        from azure.identity import DefaultAzureCredential

        client = MLClient(DefaultAzureCredential(), s.aml_subscription_id, s.aml_resource_group,
                          s.aml_workspace)
        return cls(client, environment=s.aml_environment,
                   environment_context=s.aml_environment_context, experiment=s.aml_experiment,
                   workspace=s.aml_workspace)

    def deploy(self, target: Target, previous: Placement | None = None) -> Placement:
        for _ in range(_MAX_GENERATIONS):
            job = self._job(job_name(target))
            if job is None:
                break
            if job.status not in TERMINAL:
                log.info("adopting submitted job", job=job.name, status=job.status)
                return self._placement(target, job.name, adopted=True)
            target = replace(target, generation=target.generation + 1)
        self._check_compute(target)
        job = participant_job(target, environment=self._environment_for(target),
                              experiment=self.experiment)
        created = self.ml.jobs.create_or_update(job)
        log.info("submitted job", job=created.name, compute=target.compute.compute)
        return self._placement(target, created.name, adopted=False)

    def stop(self, placement: Placement) -> None:
        self._cancelled.add(placement.handle)
        job = self._job(placement.handle)
        if job is None or job.status in TERMINAL:
            return
        self.ml.jobs.begin_cancel(placement.handle).result()

    def observe(self, placement: Placement) -> Observation:
        try:
            job = self._job(placement.handle)
        except HttpResponseError as exc:  # the workspace is unreachable now, not the job gone
            return Observation("unknown", str(exc))
        if job is None:
            return Observation("exited", f"Azure ML job {placement.handle} no longer exists")
        status = run_status(job.status)
        detail = f"Azure ML job {job.name} is {job.status}"
        if status == "failed":
            detail += f"; see its logs: {getattr(job, 'studio_url', '') or job.name}"
        return Observation(status, detail)

    def expected_exit(self, placement: Placement) -> bool:
        return placement.handle in self._cancelled

    def _placement(self, target: Target, name: str, *, adopted: bool) -> Placement:
        # ready only once the watcher sees it Running (a job may queue for long)
        return Placement(backend=self.backend, handle=name, generation=target.generation,
                         adopted=adopted, ready=False)

    def _job(self, name: str) -> Any | None:
        try:
            return self.ml.jobs.get(name)
        except ResourceNotFoundError:
            return None

    def _check_compute(self, target: Target) -> None:
        name = target.compute.compute
        if not name:
            return  # participant_job names the missing field
        try:
            found = self.ml.compute.get(name)
        except ResourceNotFoundError:
            raise DeploymentError(
                f"{target.name}: compute {name!r} does not exist in Azure ML workspace "
                f"{self.workspace}; attach the Arc cluster (or create the AML compute) under that "
                "name, or fix compute.compute"
            ) from None
        _check_claims_can_mount(target, found)

    def _environment_for(self, target: Target) -> str:
        if target.compute.environment:
            return environment_ref(target.compute.environment)
        if self._environment_ref is None:
            try:
                found = self.ml.environments.get(self.environment, label="latest")
            except ResourceNotFoundError:
                found = self.ml.environments.create_or_update(
                    nvflare_environment(self.environment, self.environment_context))
            self._environment_ref = f"azureml:{found.name}:{found.version}"
        return self._environment_ref


def _check_claims_can_mount(target: Target, compute: Any) -> None:
    """Only Azure ML's Kubernetes compute mounts PersistentVolumeClaims into job pods."""
    claims = [item for item in target.data if item.kind == "pvc"]
    kind = getattr(compute, "type", None)
    if claims and kind != "kubernetes":
        raise DeploymentError(
            f"{target.name}: data input {claims[0].name!r} is a pvc, but compute "
            f"{compute.name!r} is {kind or 'not a Kubernetes compute'}; Azure ML mounts claims "
            "only on an attached Kubernetes (Arc) cluster: use a uri input on this compute"
        )
