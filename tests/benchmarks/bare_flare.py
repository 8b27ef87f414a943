"""Bare NVFlare, driven the way a careful operator would, as the baseline for ArcFlare.

The same project ArcFlare provisions (`federation_project` of the same CreateFederation),
built by `nvflare provision`; the server's job store and snapshots pointed into its kit
and its heart_beat_timeout set as the provisioner sets them; every kit started with its
own `startup/sub_start.sh --once` (the command the deployer runs); the job-controller's
exported recipe submitted through a FLARE API session kept open, polled, its result
downloaded.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from arcflare.contracts.commands import CreateFederation
from arcflare.provisioner.project import ServerEndpoint, federation_project

POLL_S = 0.5


class BareFederation:
    def __init__(self, root: Path, spec: CreateFederation, port: int) -> None:
        self.root, self.spec, self.port = root, spec, port
        self.procs: list[subprocess.Popen] = []
        self.kits = root / "ws" / spec.name / "prod_00"

    @property
    def server(self) -> Path:
        return self.kits / "localhost"

    @property
    def admin(self) -> str:
        return next(a.email for a in self.spec.admins if a.role == "project_admin")

    def provision(self) -> None:
        from nvflare.lighter.utils import update_storage_locations

        project = federation_project(self.spec, ServerEndpoint("localhost", self.port))
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "project.yml").write_text(yaml.safe_dump(project, sort_keys=False))
        subprocess.run([str(Path(sys.executable).with_name("nvflare")), "provision",
                        "-p", "project.yml", "-w", "ws"], cwd=self.root, check=True,
                       capture_output=True)
        update_storage_locations(local_dir=str(self.server / "local"),
                                 workspace=str(self.server))
        resources_file = self.server / "local" / "resources.json"
        resources = json.loads(resources_file.read_text())
        for server in resources.get("servers", []):
            server["heart_beat_timeout"] = self.spec.heart_beat_timeout_s
        resources_file.write_text(json.dumps(resources))
        for site in self.spec.sites:
            local = self.kits / site.name / "local"
            (local / "resources.json").write_text((local / "resources.json.default").read_text())

    def start(self, participant: str) -> subprocess.Popen:
        kit = self.kits / participant
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARCFLARE_")}
        env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
        with open(kit / "console.txt", "ab") as log:
            proc = subprocess.Popen(["bash", str(kit / "startup" / "sub_start.sh"), "--once"],
                                    cwd=kit, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.procs.append(proc)
        return proc

    def start_sites(self) -> dict[str, subprocess.Popen]:
        return {site.name: self.start(site.name) for site in self.spec.sites}

    def session(self, timeout: float = 60):
        from nvflare.fuel.flare_api.flare_api import new_secure_session

        return new_secure_session(self.admin, str(self.kits / self.admin), timeout=timeout)

    def run_job(self, session, job_dir: Path, result_dir: Path) -> str:
        """Submit, wait for the end (polled as the job-controller polls), download."""
        job_id = session.submit_job(str(job_dir))
        _, meta = session.monitor_job_and_return_job_meta(job_id, timeout=1800,
                                                          poll_interval=POLL_S)
        if not meta or meta.get("status") != "FINISHED:COMPLETED":
            raise RuntimeError(f"bare NVFlare job ended {(meta or {}).get('status')}")
        session.download_job_result(job_id, destination=str(result_dir))
        return job_id

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM every group, then SIGKILL what is left (job processes of the group too)."""
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        _kill_remaining(self.root)


def _kill_remaining(root: Path) -> None:
    """NVFlare job processes start sessions of their own: whatever still runs from here."""
    import psutil

    doomed = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if str(root) in " ".join(proc.info["cmdline"] or ()):
                proc.kill()
                doomed.append(proc)
        except psutil.Error:
            continue
    psutil.wait_procs(doomed, timeout=10)
