"""Job decoration: every submitted job gets the ArcFlare bridge, so users' jobs need no change.

The server app gains the bridge component (arcflare.flare.bridge.BusBridge), which
forwards NVFlare's analytics and lifecycle events to the bus; each client app gains
NVFlare's ConvertToFedEvent for `analytix_log_stats`, so what the standard tracking
writers log on a site reaches the server. The config functions are pure: a new
dict out, the input untouched, and decorating twice gives the same result (a retried
submit must carry identical content, or NVFlare's submit token reports a conflict).
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from arcflare.runtime.settings import Settings

BRIDGE_ID = "arcflare_bridge"
BRIDGE_PATH = "arcflare.flare.bridge.BusBridge"
FED_EVENT_ID = "arcflare_event_to_fed"
FED_EVENT_PATH = "nvflare.app_common.widgets.convert_to_fed_event.ConvertToFedEvent"
ANALYTIX_EVENT = "analytix_log_stats"


def bridge_bus(settings: Settings) -> dict[str, Any]:
    """Where the bridge reports: the bus this job-controller is on. The embedded broker by its
    file; Azure Service Bus by namespace (a connection string is a secret and never goes into
    a job: the server then takes it from its own environment)."""
    if settings.bus == "sqlite":
        return {"bus": "sqlite", "bus_file": str(settings.bus_path())}
    if settings.servicebus_namespace:
        return {"bus": "azure", "servicebus_namespace": settings.servicebus_namespace}
    return {"bus": "azure"}


def decorate_server_config(
    config: dict[str, Any], *, federation: str, bus: dict[str, Any] | None = None
) -> dict[str, Any]:
    args: dict[str, Any] = {"federation": federation, **(bus or {})}
    bridge = {"id": BRIDGE_ID, "path": BRIDGE_PATH, "args": args}
    out = copy.deepcopy(config)
    components = [c for c in out.get("components", []) if c.get("id") != BRIDGE_ID]
    out["components"] = [*components, bridge]
    return out


def decorate_client_config(config: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(config)
    components = out.get("components", [])
    for component in components:
        if component.get("path") == FED_EVENT_PATH and ANALYTIX_EVENT in component.get("args", {}).get(
            "events_to_convert", []
        ):
            return out  # the job already forwards its metrics to the server
    converter = {"id": FED_EVENT_ID, "path": FED_EVENT_PATH, "args": {"events_to_convert": [ANALYTIX_EVENT]}}
    out["components"] = [*components, converter]
    return out


def _apps_for(meta: dict[str, Any], role: str) -> list[str]:
    """The app folders deployed to the server (role 'server') or to any site (role 'client')."""
    apps = []
    for app, targets in meta.get("deploy_map", {}).items():
        targets = [t.lower() if isinstance(t, str) else t for t in targets]
        on_server = "server" in targets or "@all" in targets
        on_client = any(t != "server" for t in targets)
        if (role == "server" and on_server) or (role == "client" and on_client):
            apps.append(app)
    return apps


def _rewrite(path: Path, change) -> None:
    if path.is_file():
        path.write_text(json.dumps(change(json.loads(path.read_text())), indent=2, sort_keys=True))


def decorate_job(
    job_dir: Path,
    *,
    federation: str,
    bridge: bool = True,
    bus: dict[str, Any] | None = None,
) -> None:
    """Decorate the job folder in place (it is our private copy under data_dir/jobs)."""
    meta = json.loads((job_dir / "meta.json").read_text())
    for app in _apps_for(meta, "server") if bridge else []:
        _rewrite(
            job_dir / app / "config" / "config_fed_server.json",
            lambda c: decorate_server_config(c, federation=federation, bus=bus),
        )
    for app in _apps_for(meta, "client"):
        _rewrite(job_dir / app / "config" / "config_fed_client.json", decorate_client_config)
