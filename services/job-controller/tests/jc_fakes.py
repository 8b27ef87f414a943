"""A fake FLARE admin for tests of the code around the port; test_flare_admin_contract holds
it to what the real adapter does on a real NVFlare server."""
from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from arcflare.contracts.artifacts import STARTUP_KIT, ArtifactRef
from arcflare.contracts.events import FederationProvisioned
from arcflare.job_controller.adapters.flare_admin import (
    ClientSeen,
    FlareAdmin,
    JobRefused,
    JobView,
    ServerView,
    UnknownJob,
)

CA = ":".join(["AB"] * 32)
#: an admin kit as FederationProvisioned names it; a fake admin never fetches it
ADMIN_KIT = ArtifactRef(sha256="0" * 64, size=1, media_type=STARTUP_KIT,
                        locator=f"folder:kits/{'0' * 64}")


def provisioned(federation: str = "fed",
                sites: tuple[str, ...] = ("site-1", "site-2")) -> FederationProvisioned:
    """A federation as the provisioner introduces it, for a service on a fake FLARE admin."""
    return FederationProvisioned(
        federation=federation, server_endpoint="localhost:1", server_kit_ref=ADMIN_KIT.locator,
        admin_kit=ADMIN_KIT, admin_kit_ref=ADMIN_KIT.locator, admin_name="a@b.org",
        sites=list(sites), ca_fingerprint=CA, admins=ADMINS)
#: who may run jobs in the test federations: the default principal, as project_admin
ADMINS = [{"email": "admin@arcflare.local", "org": "consortium", "role": "project_admin"},
          {"email": "member@hospital.org", "org": "hospital", "role": "member"}]


class FakeFlareAdmin(FlareAdmin):
    """A server that accepts jobs and keeps them SUBMITTED (no client ever runs them)."""

    def __init__(self, clients: list[str]) -> None:
        self.clients = clients
        self.submitted: dict[str, str] = {}  # submit token -> job id
        self.views: dict[str, JobView] = {}
        self.disabled: list[str] = []

    def server_view(self) -> ServerView:
        running = [j for j, v in self.views.items() if v.status == "RUNNING"]
        return ServerView("started", [ClientSeen(c, time.time()) for c in self.clients], running)

    def submit(self, job_dir: Path, submit_token: str) -> str:
        if submit_token in self.submitted:
            return self.submitted[submit_token]
        meta = Path(job_dir) / "meta.json"
        if not meta.is_file():
            raise JobRefused(f"invalid job definition: no meta.json in {Path(job_dir).name}")
        job_id = str(uuid.uuid4())
        name = json.loads(meta.read_text()).get("name") or Path(job_dir).name
        self.views[job_id] = JobView(job_id, name, "SUBMITTED", submit_time=time.time())
        self.submitted[submit_token] = job_id
        return job_id

    def find_submitted(self, submit_token: str) -> str | None:
        return self.submitted.get(submit_token)

    def job(self, job_id: str) -> JobView:
        if job_id not in self.views:
            raise UnknownJob(job_id)
        return self.views[job_id]

    def jobs(self) -> list[JobView]:
        return list(self.views.values())

    def set_status(self, job_id: str, status: str) -> None:
        old = self.job(job_id)
        self.views[job_id] = JobView(job_id, old.name, status, submit_time=old.submit_time)

    def abort(self, job_id: str) -> None:
        if not self.job(job_id).status.startswith("FINISHED"):
            self.set_status(job_id, "FINISHED:ABORTED")

    def download_result(self, job_id: str, destination: Path) -> Path:
        view = self.job(job_id)
        target = destination / job_id
        target.mkdir(parents=True, exist_ok=True)
        (target / "meta.json").write_text(json.dumps({"job_id": job_id, "name": view.name,
                                                      "status": view.status}))
        return target

    def disable_client(self, site: str) -> None:
        self.disabled.append(site)


@contextmanager
def fake_service(data_dir: Path, admin: FlareAdmin, **settings: object) -> Iterator[tuple]:
    """A job-controller (no watcher) on a fake FLARE admin that knows the federation "fed":
    (service, client, admin, settings); stopped at the end."""
    from arcflare.client import Client
    from arcflare.job_controller.bootstrap import bootstrap
    from arcflare.job_controller.settings import JobControllerSettings

    from tests.support.signing import as_provisioner

    s = JobControllerSettings(data_dir=data_dir, **settings)
    svc = bootstrap(s, admin_factory=lambda fed: admin, watch=False)
    as_provisioner(svc, provisioned())
    svc.drain()
    client = Client(s)
    try:
        yield svc, client, admin, s
    finally:
        client.close()
        svc.stop()
