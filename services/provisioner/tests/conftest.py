"""Fixtures: a provisioner on a fresh data dir with the embedded bus, and a client."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from arcflare.client import Client
from arcflare.contracts.artifacts import ArtifactRef
from arcflare.contracts.commands import CreateFederation
from arcflare.contracts.envelope import Envelope
from arcflare.flare.kit_artifacts import KitCache
from arcflare.provisioner.bootstrap import bootstrap
from arcflare.provisioner.settings import ProvisionerSettings
from arcflare.runtime import Service
from arcflare.trust.local import DEFAULT_OPERATORS, ensure_local_identities

ADMIN = "admin@hospital.org"


def make_settings(data_dir: Path, **extra: object) -> ProvisionerSettings:
    """Settings on a data dir with the local identities (the operators below among them)."""
    ensure_local_identities(data_dir, operators=(*DEFAULT_OPERATORS, (ADMIN, "consortium"),
                                                 ("lead@hospital.org", "consortium")))
    values: dict = {"issued_by": ADMIN, "retry_backoff_base_s": 0.01,
                    "retry_backoff_max_s": 0.01, **extra}
    return ProvisionerSettings(data_dir=data_dir, **values)


def federation_spec(name: str = "demo", sites: int = 2, **extra: object) -> CreateFederation:
    return CreateFederation(
        name=name,
        sites=[{"name": f"site-{i}", "org": f"hospital{i}"} for i in range(1, sites + 1)],
        admins=[{"email": ADMIN, "org": "consortium", "role": "project_admin"},
                {"email": "lead@hospital.org", "org": "consortium", "role": "lead"}],
        **extra,
    )


class Harness:
    """Send a command, let the service handle it, and read what was published."""

    def __init__(self, service: Service, client: Client) -> None:
        self.service = service
        self.client = client
        self.settings: ProvisionerSettings = service.settings  # type: ignore[assignment]

    def run(self, command) -> Envelope:
        command_id = self.client.send(command)
        self.service.drain(timeout=30)
        return self.client.wait(command_id, timeout=5)

    def published(self) -> list[Envelope]:
        """Everything on the events topic so far (what any subscriber could read)."""
        return list(self.client.follow(from_start=True, until_idle=True, timeout=5))

    def caused_by(self, outcome: Envelope) -> list[Envelope]:
        return [e for e in self.published() if e.causation_id == outcome.causation_id]

    def kit(self, ref: dict) -> Path:
        """A kit an event announced, as its reader gets it: fetched from the artifact store,
        verified and unpacked into a folder of the reader's own."""
        artifact = ArtifactRef.model_validate(ref)
        cache = KitCache(self.service.dependencies["artifacts"],
                         self.settings.data_dir.parent / "reader-kits")
        return cache.folder(artifact, "kit")


@contextmanager
def harness_on(settings: ProvisionerSettings) -> Iterator[Harness]:
    """A provisioner on these settings, driven by a client; both stopped at the end."""
    service = bootstrap(settings)
    client = Client(settings)
    try:
        yield Harness(service, client)
    finally:
        client.close()
        service.stop(timeout=5)


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    with harness_on(make_settings(tmp_path / "data")) as running:
        yield running
