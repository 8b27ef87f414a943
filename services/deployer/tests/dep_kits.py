"""Real NVFlare startup kits for the deployer's tests, provisioned with NVFlare itself and
laid out as the provisioner's kit store.

A free port, a short heart_beat_timeout (above the clients' 10 s heartbeat, else they
flap), and the server's resources.json left
pointing at NVFlare's /tmp/nvflare defaults — the deployer must move them into its
workspace, and these tests check that it does.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from arcflare.artifacts.folder import FolderArtifactStore
from arcflare.contracts.artifacts import ArtifactRef
from arcflare.flare.kit_artifacts import put_kit

from tests.support.flare_project import provision as provision_project

ADMIN = "admin@arcflare.test"
#: the server kit's name in a kit store (NVFlare names it after the host, localhost)
SERVER_NAME = "server"


@dataclass(frozen=True)
class Kits:
    federation: str
    port: int
    root: Path  # <store>/<federation>: the kit store's layout, as the provisioner keeps it
    #: the artifact store the tests' provisioner and deployer share (artifact_folder)
    artifacts: FolderArtifactStore

    @property
    def server(self) -> Path:
        return self.root / SERVER_NAME

    @property
    def admin(self) -> Path:
        return self.root / ADMIN

    def site(self, name: str) -> Path:
        return self.root / name

    def ref(self, participant: str) -> str:
        """The kit as a folder of the deployer's own (what a compute is handed)."""
        return f"file:{self.root / participant}"

    def artifact(self, participant: str) -> ArtifactRef:
        """The kit as the provisioner announces it: packed into the artifact store."""
        return put_kit(self.artifacts, self.root / participant)


def provision(workdir: Path, federation: str, sites: list[str],
              heart_beat_timeout: int = 15) -> Kits:
    built, port = provision_project(workdir, federation, sites, admin=ADMIN)
    # laid out as the provisioner's kit store: <store>/<federation>/<participant>, the server
    # kit as "server" — the deployer runs kits from its store only
    root = workdir / "kits" / federation
    root.parent.mkdir(parents=True, exist_ok=True)
    built.rename(root)
    (root / "localhost").rename(root / SERVER_NAME)
    kits = Kits(federation, port, root, FolderArtifactStore(workdir.parent / "artifacts"))
    local = kits.server / "local"
    resources = json.loads((local / "resources.json.default").read_text())
    resources["servers"][0]["heart_beat_timeout"] = heart_beat_timeout
    (local / "resources.json").write_text(json.dumps(resources, indent=2))
    return kits
