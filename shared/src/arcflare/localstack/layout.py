"""Where each process of the local stack keeps its state.

SharedLayout (`arcflare local up`): every service and agent on the one data dir.

IsolatedLayout (`arcflare local up --isolated`): every service, every site agent and the
CLI on a data dir of its own under <root>/parties/<name>, as if each ran on a machine of
its own. They share only the bus — the embedded broker's file <root>/bus.db
(ARCFLARE_BUS_FILE) — and the artifact store the environment names
(ARCFLARE_ARTIFACT_STORE, azureblob for a real test of it). The operator's identities live
in <root>/identity (the trust root among them); each party is handed only its own
identity and the trust anchors, the way a container gets its secret mounted.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from arcflare.runtime.files import private_dir
from arcflare.trust import local
from arcflare.trust.identity import IdentityFiles
from arcflare.trust.local import DEFAULT_OPERATORS

#: the default operator: the person the CLI party acts as
OPERATOR = DEFAULT_OPERATORS[0][0]


class SharedLayout:
    isolated = False

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def service_dir(self, name: str) -> Path:
        return self.root

    def env(self) -> dict[str, str]:
        return {}

    def agent(self, federation: str, site: str) -> tuple[Path, dict[str, str]]:
        """The agent's data dir and its environment; its identity issued from the local root
        (a hospital's agent gets its own in its kit, or from the operators)."""
        local.site_identity(self.root, federation, site)
        return self.root, {}


class IsolatedLayout(SharedLayout):
    isolated = True

    def party(self, name: str) -> Path:
        return private_dir(self.root / "parties" / name)

    def service_dir(self, name: str) -> Path:
        folder = self.party(name)
        _hand_over(local.service_identity_paths(self.root, name),
                   local.service_identity_paths(folder, name))
        if name == "provisioner":  # it issues the agents' and bridges' identities into kits
            _hand_over(local.issuer_identity_paths(self.root),
                       local.issuer_identity_paths(folder))
        _hand_over_anchors(self.root, folder)
        return folder

    def cli_dir(self, email: str = OPERATOR) -> Path:
        """The data dir of a person's CLI: their identity and the trust anchors, nothing else."""
        folder = self.party("cli")
        _hand_over(local.person_identity_paths(self.root, email),
                   local.person_identity_paths(folder, email))
        _hand_over_anchors(self.root, folder)
        return folder

    def env(self) -> dict[str, str]:
        return {"ARCFLARE_BUS_FILE": str(self.root / "bus.db")}

    def agent(self, federation: str, site: str) -> tuple[Path, dict[str, str]]:
        folder = self.party(f"site-agent-{federation}-{site}")
        _hand_over(local.site_identity(self.root, federation, site),
                   local.site_identity_paths(folder, federation, site))
        _hand_over_anchors(self.root, folder)
        # what the agent watches: its site's NVFlare client, which the deployer runs
        workspace = self.root / "parties" / "deployer" / "sites" / federation / site
        return folder, {**self.env(), "ARCFLARE_SITE_WORKSPACE": str(workspace)}


def _hand_over(source: IdentityFiles, target: IdentityFiles) -> None:
    private_dir(target.directory)
    for name in (source.cert, source.key, source.chain):
        if name.is_file():
            shutil.copy2(name, target.directory / name.name)  # key.pem stays 0600


def _hand_over_anchors(root: Path, folder: Path) -> None:
    anchors = local.anchors_path(folder)
    private_dir(anchors.parent)
    shutil.copy2(local.anchors_path(root), anchors)
