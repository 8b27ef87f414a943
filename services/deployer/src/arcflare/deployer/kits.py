"""Kit references a compute runs (`file:<abs path>` of a kit in the deployer's own kit cache,
or `azureml:<name>:<version>`) and kit checks.

A kit is checked before anything is started, so a missing or corrupt kit ends in a
DeploymentFailed that says which file is wrong instead of a process that dies.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from arcflare.deployer.compute import DeploymentError, Role
from arcflare.flare import kits


@dataclass(frozen=True)
class KitRef:
    scheme: str  # "file" | "azureml"
    path: Path | None = None  # file kits
    asset: str | None = None  # azureml data asset "name:version"

    @property
    def uri(self) -> str:
        return str(self.path) if self.scheme == "file" else f"azureml:{self.asset}"


def parse_kit_ref(ref: str) -> KitRef:
    scheme, _, rest = ref.partition(":")
    if scheme == "file":
        try:
            return KitRef("file", path=kits.resolve(ref))
        except kits.KitNotFound:
            raise DeploymentError(
                f"kit {rest} is missing (no startup/ folder); re-provision the participant "
                "or restore the kit store"
            ) from None
        except ValueError as exc:
            raise DeploymentError(f"{exc}; re-provision the participant") from None
    if scheme == "azureml" and rest.count(":") == 1 and all(rest.split(":")):
        return KitRef("azureml", asset=rest)
    raise DeploymentError(
        f"kit_ref {ref!r} is not usable: expected 'file:<absolute path>' or "
        "'azureml:<name>:<version>'; re-provision the participant"
    )


def check_local_kit(path: Path, role: Role) -> None:
    """The files NVFlare needs to start this role, present and readable."""
    config = "fed_server.json" if role == "server" else "fed_client.json"
    startup = path / "startup"
    if not startup.is_dir():
        raise DeploymentError(
            f"kit {path} is missing (no startup/ folder); re-provision the participant "
            "or restore the kit store"
        )
    try:
        fed = json.loads((startup / config).read_text())
    except FileNotFoundError:
        raise DeploymentError(
            f"kit {path} has no startup/{config}: it is not a {role} kit or is incomplete; "
            "re-provision the participant"
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise DeploymentError(
            f"kit {path}: startup/{config} is not valid JSON ({exc}); re-provision the participant"
        ) from None
    security = fed.get("client", {}) if role == "client" else (fed.get("servers") or [{}])[0]
    needed = ["sub_start.sh"] + [
        security.get(key) for key in ("ssl_cert", "ssl_private_key", "ssl_root_cert")
    ]
    missing = [name for name in needed if not name or not (startup / name).is_file()]
    if missing:
        raise DeploymentError(
            f"kit {path} is incomplete: startup/ lacks {', '.join(map(str, missing))}; "
            "re-provision the participant"
        )
    if "--once" not in (startup / "sub_start.sh").read_text(errors="replace"):
        raise DeploymentError(
            f"kit {path}: startup/sub_start.sh has no --once mode (a kit from an older "
            "NVFlare); re-provision it with nvflare 2.9"
        )


def server_port(path: Path) -> int | None:
    """The port the server kit listens on (fed_learn_port; admin shares it in NVFlare 2.9)."""
    fed = json.loads((path / "startup" / "fed_server.json").read_text())
    target = fed["servers"][0]["service"]["target"]
    return int(target.rsplit(":", 1)[1])
