"""Wires the job-controller: state, FLARE admins, handlers and the watchers."""
from __future__ import annotations

from arcflare.artifacts import open_artifact_store
from arcflare.bus import connect
from arcflare.flare.kit_artifacts import KitCache
from arcflare.job_controller import tables
from arcflare.job_controller.flare_admins import AdminFactory, FlareAdmins, flare_api_factory
from arcflare.job_controller.handlers import COMMAND_HANDLERS, EVENT_HANDLERS
from arcflare.job_controller.recipes import before_warm_up, warm_up
from arcflare.job_controller.settings import JobControllerSettings
from arcflare.job_controller.tables import MIGRATIONS
from arcflare.job_controller.watcher import FederationWatcher, JobWatcher
from arcflare.runtime import Consumer, Service, StateStore
from arcflare.runtime.authorization import enforce_policy


def bootstrap(
    settings: JobControllerSettings | None = None,
    *,
    admin_factory: AdminFactory | None = None,
    watch: bool = True,
    **overrides,
) -> Service:
    s = settings or JobControllerSettings()
    given_bus = overrides.pop("bus", None)
    bus = given_bus or connect(s)
    state = overrides.pop("state", None) or StateStore(
        s.data_dir / "job-controller.db", migrations=MIGRATIONS
    )
    artifacts = overrides.pop("artifacts", None) or open_artifact_store(s)
    factory = admin_factory or flare_api_factory(s, KitCache(artifacts, s.kit_cache_dir))
    flare_admins = FlareAdmins(state, factory)
    # the federation watcher logs in separately, so its calls never queue behind job polls
    observer_admins = FlareAdmins(state, factory)
    job_watcher = JobWatcher(state, flare_admins, s, artifacts)
    if watch:
        before_warm_up()
    return Service(
        name="job-controller",
        settings=s,
        bus=bus,
        owns_bus=given_bus is None,
        state=state,
        consumers=[
            Consumer("job-controller", handlers=COMMAND_HANDLERS),
            Consumer("events", subscription="job-controller", handlers=EVENT_HANDLERS),
        ],
        dependencies={"flare_admins": flare_admins, "artifacts": artifacts,
                      "job_watch": job_watcher.wake if watch else None, **overrides},
        background=[job_watcher,
                    FederationWatcher(state, observer_admins, s, keep_warm=flare_admins), warm_up]
        if watch else [],
        on_stop=[flare_admins.close, observer_admins.close],
        # NVFlare-style roles: leads and project admins run jobs; members only read
        authorize=enforce_policy(tables.access),
    )
