"""A real NVFlare project for tests and benchmarks, provisioned by NVFlare itself.

One server (`localhost` on a free port), the given client sites and one project
admin, built with the same builders `nvflare provision` uses. Each suite then
arranges the kits its own way (workspaces, resources.json, how processes start).
"""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

ADMIN = "admin@arcflare.test"
SERVER = "localhost"
BUILDERS = [
    {"path": "nvflare.lighter.impl.workspace.WorkspaceBuilder"},
    {"path": "nvflare.lighter.impl.static_file.StaticFileBuilder",
     "args": {"config_folder": "config"}},
    {"path": "nvflare.lighter.impl.cert.CertBuilder"},
    {"path": "nvflare.lighter.impl.signature.SignatureBuilder"},
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts(port: int, timeout: float = 0.5) -> bool:
    """Something listens on this loopback port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_listening(port: int, proc: subprocess.Popen | None = None,
                   timeout: float = 60.0) -> None:
    """Until an NVFlare server listens on the port; fails early if `proc` (it) exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the NVFlare server exited with {proc.returncode}")
        if accepts(port, timeout=1):
            return
        time.sleep(0.2)
    raise TimeoutError(f"the NVFlare server did not listen on {port} within {timeout} s")


def provision(workdir: Path, project: str, sites: list[str], *, port: int | None = None,
              admin: str = ADMIN, org: str = "arc",
              identities_from: Path | None = None) -> tuple[Path, int]:
    """Kits in workdir/ws/<project>/prod_00 (returned, with the server's port).

    identities_from: a data dir with the local identities; its provisioner issuer then puts
    the bridge's identity into the server kit and each agent's into its site kit, as
    ArcFlare's provisioner does."""
    port = port or free_port()
    participants = [{"name": SERVER, "type": "server", "org": org, "fed_learn_port": port}]
    participants += [{"name": s, "type": "client", "org": org} for s in sites]
    participants.append({"name": admin, "type": "admin", "org": org, "role": "project_admin"})
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "project.yml").write_text(yaml.safe_dump(
        {"api_version": 3, "name": project, "participants": participants,
         "builders": BUILDERS}, sort_keys=False))
    nvflare = Path(sys.executable).with_name("nvflare")
    subprocess.run([str(nvflare), "provision", "-p", "project.yml", "-w", "ws"],
                   cwd=workdir, check=True, capture_output=True, timeout=120)
    prod = workdir / "ws" / project / "prod_00"
    if identities_from is not None:
        add_kit_identities(prod, project, sites, identities_from)
    return prod, port


def add_kit_identities(prod: Path, project: str, sites: list[str], data_dir: Path) -> None:
    from arcflare.trust.authority import Issuer
    from arcflare.trust.kits import kit_identity
    from arcflare.trust.local import ensure_local_identities, issuer_identity_paths
    from arcflare.trust.principals import Principal

    ensure_local_identities(data_dir)
    issuer = Issuer.load(issuer_identity_paths(data_dir).directory)
    issuer.issue(Principal.bridge(project), out_dir=kit_identity(prod / SERVER).directory)
    for site in sites:
        issuer.issue(Principal.site_agent(project, site),
                     out_dir=kit_identity(prod / site).directory)
