"""Real NVFlare startup kits for the deployer's tests, provisioned with NVFlare itself.

A free port, a short heart_beat_timeout (above the clients' 10 s heartbeat, else they
flap), and the server's resources.json left
pointing at NVFlare's /tmp/nvflare defaults — the deployer must move them into its
workspace, and these tests check that it does.
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ADMIN = "admin@arcflare.test"
SERVER_NAME = "localhost"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Kits:
    federation: str
    port: int
    root: Path  # prod_00

    @property
    def server(self) -> Path:
        return self.root / SERVER_NAME

    @property
    def admin(self) -> Path:
        return self.root / ADMIN

    def site(self, name: str) -> Path:
        return self.root / name

    def ref(self, participant: str) -> str:
        return f"file:{self.root / participant}"


def provision(workdir: Path, federation: str, sites: list[str],
              heart_beat_timeout: int = 15) -> Kits:
    port = free_port()
    clients = "".join(f"  - name: {s}\n    type: client\n    org: arc\n" for s in sites)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "project.yml").write_text(
        f"api_version: 3\nname: {federation}\nparticipants:\n"
        f"  - name: {SERVER_NAME}\n    type: server\n    org: arc\n    fed_learn_port: {port}\n"
        f"{clients}"
        f"  - name: {ADMIN}\n    type: admin\n    org: arc\n    role: project_admin\n"
        "builders:\n"
        "  - path: nvflare.lighter.impl.workspace.WorkspaceBuilder\n"
        "  - path: nvflare.lighter.impl.static_file.StaticFileBuilder\n"
        "    args:\n      config_folder: config\n"
        "  - path: nvflare.lighter.impl.cert.CertBuilder\n"
        "  - path: nvflare.lighter.impl.signature.SignatureBuilder\n"
    )
    nvflare = Path(sys.executable).with_name("nvflare")
    subprocess.run([str(nvflare), "provision", "-p", "project.yml", "-w", "ws"],
                   cwd=workdir, check=True, capture_output=True)
    kits = Kits(federation, port, workdir / "ws" / federation / "prod_00")
    local = kits.server / "local"
    resources = json.loads((local / "resources.json.default").read_text())
    resources["servers"][0]["heart_beat_timeout"] = heart_beat_timeout
    (local / "resources.json").write_text(json.dumps(resources, indent=2))
    return kits
