"""A stand-in for azure.ai.ml.MLClient at the port boundary: jobs, computes, environments.

Only for unit tests of the azureml adapter; the entities it receives are the real
azure-ai-ml ones, and their serialized form is what it keeps.
"""
from __future__ import annotations

from types import SimpleNamespace

from azure.core.exceptions import ResourceNotFoundError


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
    def __init__(self, names: set[str]) -> None:
        self.names = set(names)

    def get(self, name: str) -> SimpleNamespace:
        if name not in self.names:
            raise ResourceNotFoundError(f"compute {name} not found")
        return SimpleNamespace(name=name)


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
    def __init__(self, computes: set[str], environments: dict[str, str] | None = None) -> None:
        self.jobs = FakeJobs()
        self.compute = FakeComputes(computes)
        self.environments = FakeEnvironments(environments)
        self.workspace_name = "ws-test"
