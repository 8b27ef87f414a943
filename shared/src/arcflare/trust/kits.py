"""Where an ArcFlare identity sits inside an NVFlare startup kit.

The provisioner issues, with its intermediate (issuer:provisioner), the identity of a
site's agent into that site's kit and the identity of the federation's bridge into the
server kit, so that a hospital that received its kit has its agent's proof too, and the
bridge running inside the NVFlare server finds its key where the server's own are.
"""
from __future__ import annotations

from pathlib import Path

from arcflare.trust.identity import IdentityFiles

#: beside NVFlare's own credentials in startup/, 0700 like them
KIT_IDENTITY_DIR = Path("startup") / "arcflare"


def kit_identity(kit_root: Path) -> IdentityFiles:
    return IdentityFiles(Path(kit_root) / KIT_IDENTITY_DIR)
