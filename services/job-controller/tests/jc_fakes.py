"""A fake FLARE admin for tests of the code around the port (the real one is tested on NVFlare)."""
from __future__ import annotations

from pathlib import Path

from arcflare.job_controller.adapters.flare_admin import ClientSeen, FlareAdmin, JobView, ServerView

CA = ":".join(["AB"] * 32)
#: who may run jobs in the test federations: the default principal, as project_admin
ADMINS = [{"email": "admin@arcflare.local", "org": "consortium", "role": "project_admin"},
          {"email": "member@hospital.org", "org": "hospital", "role": "member"}]


class FakeFlareAdmin(FlareAdmin):
    def __init__(self, clients: list[str]) -> None:
        self.clients = clients
        self.submitted: dict[str, str] = {}
        self.disabled: list[str] = []

    def server_view(self) -> ServerView:
        return ServerView("started", [ClientSeen(c, 1.0) for c in self.clients])

    def submit(self, job_dir: Path, submit_token: str) -> str:
        return self.submitted.setdefault(submit_token, f"job-{len(self.submitted) + 1}")

    def find_submitted(self, submit_token: str) -> str | None:
        return self.submitted.get(submit_token)

    def job(self, job_id: str) -> JobView:
        return JobView(job_id, "j", "SUBMITTED")

    def jobs(self) -> list[JobView]:
        return [self.job(j) for j in self.submitted.values()]

    def abort(self, job_id: str) -> None: ...

    def download_result(self, job_id: str, destination: Path) -> Path:
        return destination / job_id

    def disable_client(self, site: str) -> None:
        self.disabled.append(site)
