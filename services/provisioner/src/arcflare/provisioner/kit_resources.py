"""local/resources.json for a freshly built kit.

NVFlare ships `resources.json.default` with its job store and snapshots under
/tmp/nvflare. The kit keeps those defaults: where the server runs is the deployer's
business (it points them into the workspace it runs the kit in, on its own machine or in
an Azure ML job), and a kit names no folder of the machine that provisioned it.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

#: our server-side components (the bridge) are built from this package prefix
ARCFLARE_CLASS_PREFIX = "arcflare."
DEFAULT_RESOURCES = "resources.json.default"
RESOURCES = "resources.json"


def write_server_resources(kit: Path, heart_beat_timeout_s: int) -> None:
    local = kit / "local"
    resources = json.loads((local / DEFAULT_RESOURCES).read_text())
    for server in resources.get("servers", []):
        server["heart_beat_timeout"] = heart_beat_timeout_s
    allow_list = resources.setdefault("class_allow_list", [])
    if ARCFLARE_CLASS_PREFIX not in allow_list:
        allow_list.append(ARCFLARE_CLASS_PREFIX)
    (local / RESOURCES).write_text(json.dumps(resources, indent=4))


def write_client_resources(kit: Path) -> None:
    """Clients keep NVFlare's defaults: they have no job store, and job folders live in
    their workspace already. The copy makes the site's effective settings explicit."""
    local = kit / "local"
    if (local / DEFAULT_RESOURCES).is_file():
        shutil.copyfile(local / DEFAULT_RESOURCES, local / RESOURCES)
