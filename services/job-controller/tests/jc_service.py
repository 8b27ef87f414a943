"""Driving a real job-controller service against a LocalFederation (tests and benchmarks)."""
from __future__ import annotations

import time
from pathlib import Path

from arcflare.artifacts import open_artifact_store
from arcflare.client import Client
from arcflare.contracts.artifacts import ArtifactRef
from arcflare.contracts.commands import RecipePackage, SubmitJob
from arcflare.contracts.envelope import Envelope
from arcflare.contracts.events import FederationProvisioned
from arcflare.flare.kit_artifacts import put_kit
from arcflare.job_controller.adapters.flare_admin import FlareApiAdmin
from arcflare.job_controller.bootstrap import bootstrap
from arcflare.job_controller.settings import JobControllerSettings
from arcflare.runtime.settings import Settings
from jc_fakes import ADMINS
from jc_federation import ADMIN, LocalFederation

from tests.support.signing import as_provisioner

SITES = ["site-1", "site-2"]
FED = "fedtest"
CA = ":".join(["AB"] * 32)


def admin_kit(data_dir: Path, fed: LocalFederation) -> ArtifactRef:
    """The provisioner's part: the admin kit put into the artifact store that a job-controller
    on data_dir reads (its folder store, by default)."""
    return put_kit(open_artifact_store(Settings(data_dir=data_dir)), fed.admin_kit)


def provisioned(fed: LocalFederation, kit: ArtifactRef, name: str = FED) -> FederationProvisioned:
    """The event that introduces the federation (under another name: the same server again)."""
    return FederationProvisioned(
        federation=name, server_endpoint=f"localhost:{fed.port}", server_kit_ref=kit.locator,
        admin_kit=kit, admin_kit_ref=kit.locator, admin_name=ADMIN, sites=SITES,
        ca_fingerprint=CA, admins=ADMINS,
    )


def start_service(data_dir: Path, fed: LocalFederation, **overrides):
    settings = JobControllerSettings(data_dir=data_dir, job_poll_interval_s=0.5, status_poll_interval_s=0)
    svc = bootstrap(settings, **overrides)
    as_provisioner(svc, provisioned(fed, admin_kit(data_dir, fed)))
    svc.drain(timeout=10)
    return svc, settings


def logreg(rounds: int, name: str = "logreg") -> SubmitJob:
    return SubmitJob(federation=FED, name=name, min_clients=2, timeout_s=600,
                     package=RecipePackage(recipe="fedavg-logreg", parameters={"rounds": rounds}))


def wait_for(client: Client, job_id: str, event_type: str, timeout: float) -> Envelope:
    for env in client.follow(types=[event_type], timeout=timeout, from_start=True):
        if env.payload.get("job_id") == job_id:
            return env
    raise TimeoutError(f"no {event_type} for {job_id} within {timeout}s")


def wait_until_running(fed: LocalFederation, job_id: str, timeout: float) -> None:
    admin = FlareApiAdmin(fed.admin_kit, ADMIN)
    try:
        deadline = time.monotonic() + timeout
        while admin.job(job_id).status != "RUNNING":
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} not RUNNING within {timeout}s")
            time.sleep(0.5)
    finally:
        admin.close()  # an open FLARE API session would hang the interpreter at exit


def nvflare_jobs(fed: LocalFederation, **query) -> list[dict]:
    with FlareApiAdmin(fed.admin_kit, ADMIN).session() as sess:
        return sess.list_jobs(**query)
