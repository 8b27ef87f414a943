"""Wires the deployer: state DB, compute adapters, the command and event consumers, the watcher."""
from __future__ import annotations

from typing import Any

from arcflare.artifacts import open_artifact_store
from arcflare.bus import connect
from arcflare.deployer import tables
from arcflare.deployer.adapters.local import LocalCompute
from arcflare.deployer.compute import Compute, Computes, DeploymentError
from arcflare.deployer.handlers import COMMAND_HANDLERS, EVENT_HANDLERS
from arcflare.deployer.settings import DeployerSettings
from arcflare.deployer.watcher import deployment_watcher
from arcflare.flare.kit_artifacts import KitCache
from arcflare.runtime import Consumer, Service, StateStore
from arcflare.runtime.authorization import enforce_policy


def azureml_compute(s: DeployerSettings) -> Compute:
    missing = [n for n in ("aml_subscription_id", "aml_resource_group", "aml_workspace")
               if not getattr(s, n)]
    if missing:
        raise DeploymentError(
            "compute.backend azureml needs the deployer's Azure ML workspace: set "
            + ", ".join(f"ARCFLARE_{n.upper()}" for n in missing)
        )
    from arcflare.deployer.adapters.azureml import AzureMLCompute

    return AzureMLCompute.from_settings(s)


def computes_for(s: DeployerSettings) -> Computes:
    return Computes({
        "local": lambda: LocalCompute(s.data_dir, stop_grace_s=s.stop_grace_s,
                                      ready_timeout_s=s.server_ready_timeout_s),
        "azureml": lambda: azureml_compute(s),
    })


def bootstrap(settings: DeployerSettings | None = None, **overrides: Any) -> Service:
    s = settings or DeployerSettings()
    given_bus = overrides.pop("bus", None)
    bus = given_bus or connect(s)
    state = overrides.pop("state", None) or StateStore(
        s.data_dir / "deployer.db", migrations=tables.MIGRATIONS
    )
    computes = overrides.pop("computes", None) or computes_for(s)
    artifacts = overrides.pop("artifacts", None) or open_artifact_store(s)
    kits = KitCache(artifacts, s.kit_cache_dir)
    return Service(
        name="deployer",
        settings=s,
        bus=bus,
        owns_bus=given_bus is None,
        state=state,
        consumers=[
            Consumer("deployer", handlers=COMMAND_HANDLERS, sessions=True),
            Consumer("events", subscription="deployer", handlers=EVENT_HANDLERS),
        ],
        dependencies={"computes": computes, "artifacts": artifacts, "kits": kits, **overrides},
        background=[deployment_watcher(state, computes, kits, s.watch_interval_s)],
        authorize=enforce_policy(tables.access),
    )

