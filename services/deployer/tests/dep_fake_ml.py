"""A stand-in for azure.ai.ml.MLClient at the port boundary: jobs, computes, environments.

Only for unit tests of the azureml adapter; the entities it receives are the real
azure-ai-ml ones, and their serialized form is what it keeps.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

from arcflare.client import Client
from arcflare.contracts.commands import AdminSpec
from arcflare.contracts.events import FederationProvisioned, SiteProvisioned
from arcflare.contracts.fields import ComputeSpec
from arcflare.deployer.adapters.azureml import AzureMLCompute
from arcflare.deployer.bootstrap import bootstrap
from arcflare.deployer.compute import Computes
from arcflare.deployer.settings import DeployerSettings
from arcflare.flare.kits import asset_name
from arcflare.runtime import Service
from azure.core.exceptions import ResourceNotFoundError
from dep_kits import ADMIN
from dep_service import FINGERPRINT, publish, settings

ARC = ComputeSpec(backend="azureml", compute="arc-hospital-a", instance_type="gpu-small")


class FakeJobs:
    def __init__(self) -> None:
        self.jobs: dict[str, SimpleNamespace] = {}
        self.submitted: list[dict] = []
        self.cancelled: list[str] = []

    def get(self, name: str) -> SimpleNamespace:
        if name not in self.jobs:
            raise ResourceNotFoundError(f"job {name} not found")
        return self.jobs[name]

    def create_or_update(self, job) -> SimpleNamespace:
        rest = job._to_job()._to_rest_object().as_dict()
        self.submitted.append(rest)
        self.jobs[job.name] = SimpleNamespace(name=job.name, status="Queued",
                                              studio_url=f"https://studio/{job.name}")
        return self.jobs[job.name]

    def begin_cancel(self, name: str) -> SimpleNamespace:
        self.get(name).status = "Canceled"
        self.cancelled.append(name)
        return SimpleNamespace(result=lambda timeout=None: None)


class FakeComputes:
    def __init__(self, names: set[str], types: dict[str, str] | None = None) -> None:
        self.names = set(names)
        #: Azure ML's compute type by name; an attached Arc cluster is "kubernetes"
        self.types = dict(types or {})

    def get(self, name: str) -> SimpleNamespace:
        if name not in self.names:
            raise ResourceNotFoundError(f"compute {name} not found")
        return SimpleNamespace(name=name, type=self.types.get(name, "kubernetes"))


class FakeEnvironments:
    def __init__(self, existing: dict[str, str] | None = None) -> None:
        self.existing = dict(existing or {})
        self.created: list = []

    def get(self, name: str, label: str | None = None, version: str | None = None):
        if name not in self.existing:
            raise ResourceNotFoundError(f"environment {name} not found")
        return SimpleNamespace(name=name, version=self.existing[name])

    def create_or_update(self, environment):
        self.created.append(environment)
        self.existing[environment.name] = "1"
        return SimpleNamespace(name=environment.name, version="1")


class FakeMLClient:
    def __init__(self, computes: set[str], environments: dict[str, str] | None = None,
                 compute_types: dict[str, str] | None = None) -> None:
        self.jobs = FakeJobs()
        self.compute = FakeComputes(computes, compute_types)
        self.environments = FakeEnvironments(environments)
        self.workspace_name = "ws-test"


@contextmanager
def aml_deployer(data_dir: Path) -> Iterator[tuple[Service, Client, FakeMLClient, Computes]]:
    """A deployer service whose azureml compute talks to a fake MLClient, and a client."""
    ml = FakeMLClient({"arc-hospital-a", "cpu-cluster"}, {"arcflare-nvflare": "7"})
    computes = Computes({"azureml": lambda: compute_with(ml)})
    svc = bootstrap(settings(data_dir), computes=computes)
    client = Client(svc.settings, issued_by=ADMIN)
    try:
        yield svc, client, ml, computes
    finally:
        client.close()
        svc.stop()


def compute_with(ml: FakeMLClient) -> AzureMLCompute:
    return AzureMLCompute(ml, environment="arcflare-nvflare",
                          environment_context=DeployerSettings().aml_environment_context)


def provision_events(client: Client, tmp_path: Path) -> None:
    """A federation whose server runs on AML compute and whose site on an Arc cluster."""
    publish(client.bus, client.settings.data_dir,
            FederationProvisioned(
                federation="fedaml", server_endpoint="server.example.org:8002",
                server_kit_ref="azureml:arcflare-kit-fedaml-server:1",
                admin_kit_ref=f"azureml:{asset_name('fedaml', ADMIN)}:1", admin_name=ADMIN,
                sites=["hospital-a"],
                server_compute=ComputeSpec(backend="azureml", compute="cpu-cluster"),
                admins=[AdminSpec(email=ADMIN, org="arc", role="project_admin")],
                ca_fingerprint=FINGERPRINT),
            SiteProvisioned(
                federation="fedaml", site="hospital-a", org="arc",
                kit_ref="azureml:arcflare-kit-fedaml-hospital-a:1", cert_fingerprint=FINGERPRINT,
                not_after=datetime.now(UTC) + timedelta(days=300), compute=ARC))
