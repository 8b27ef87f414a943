"""Deployer handlers: commands on the `deployer` queue; provisioning events, renewals and the
jobs that may hold a renewal's roll up, on events/deployer (the rolls: arcflare.deployer.rolls).

Every deploy is idempotent (the compute adopts a running copy), so a redelivered or
repeated command never starts a second process or job. A cause a person must fix
ends in DeploymentFailed; anything else is retried by the runtime.
"""
from __future__ import annotations

from arcflare.artifacts import ArtifactStore
from arcflare.contracts.commands import (
    DeployServer,
    DeploySite,
    RestartSite,
    StopSite,
    TeardownFederation,
)
from arcflare.contracts.events import (
    CertificateRenewed,
    FederationProvisioned,
    FederationTornDown,
    JobCompleted,
    JobFailed,
    JobSubmitted,
    SiteProvisioned,
    SiteRemoved,
    SiteStopped,
)
from arcflare.deployer import rolls, tables
from arcflare.deployer.compute import SERVER, Computes, Target
from arcflare.deployer.deployments import deploy, fail, generation_of, own_kit, stop
from arcflare.flare.kit_artifacts import KitCache
from arcflare.runtime import Rejected, UnitOfWork, get_logger

log = get_logger("arcflare.deployer")


def deploy_server(cmd: DeployServer, *, uow: UnitOfWork, computes: Computes,
                  kits: KitCache) -> None:
    target = tables.server_target(uow.db, cmd.federation)
    if target is None:
        fail(uow, cmd.federation, SERVER,
              f"federation {cmd.federation} is not provisioned (the deployer has seen no "
              "FederationProvisioned for it); create it first or check the name")
        return
    deploy(uow, target, computes, kits)


def deploy_site(cmd: DeploySite, *, uow: UnitOfWork, computes: Computes,
                kits: KitCache) -> None:
    target = _site_target(uow, cmd.federation, cmd.site)
    if target is not None:
        deploy(uow, target, computes, kits)


def stop_site(cmd: StopSite, *, uow: UnitOfWork, computes: Computes) -> None:
    found = tables.deployment(uow.db, cmd.federation, cmd.site)
    if found is None and tables.site_row(uow.db, cmd.federation, cmd.site) is None:
        raise Rejected("not_found", f"site: {cmd.site} is not a site of federation "
                                    f"{cmd.federation} known to the deployer")
    stop(uow, cmd.federation, cmd.site, computes)
    uow.publish(SiteStopped(federation=cmd.federation, site=cmd.site, reason="requested",
                            generation=generation_of(found)))


def restart_site(cmd: RestartSite, *, uow: UnitOfWork, computes: Computes,
                 kits: KitCache) -> None:
    target = _site_target(uow, cmd.federation, cmd.site)
    if target is None:
        return
    stop(uow, cmd.federation, cmd.site, computes)
    deploy(uow, target, computes, kits, restart=True)


def teardown_federation(cmd: TeardownFederation, *, uow: UnitOfWork, computes: Computes) -> None:
    live = tables.deployments(uow.db, federation=cmd.federation, live_only=True)
    # sites before the server, so no client logs a lost server on its way out
    stopped = [d.target for d in sorted(live, key=lambda d: d.target == SERVER)]
    generations = {d.target: d.placement.generation for d in live}
    for name in stopped:
        stop(uow, cmd.federation, name, computes)
        if name != SERVER:
            uow.publish(SiteStopped(federation=cmd.federation, site=name, reason="requested",
                                    generation=generations[name]))
    uow.publish(FederationTornDown(federation=cmd.federation, stopped=stopped,
                                   server_generation=generations.get(SERVER)))


def record_federation(evt: FederationProvisioned, *, uow: UnitOfWork,
                      artifacts: ArtifactStore) -> None:
    own_kit(artifacts, evt.server_kit_ref, evt.server_kit, evt.federation, SERVER)
    own_kit(artifacts, evt.admin_kit_ref, evt.admin_kit, evt.federation, evt.admin_name)
    # write() first: it serialises this with record_site, so a site provisioned at the
    # same moment is either seen here or sees this federation — never neither
    db = uow.write()
    tables.save_federation(db, name=evt.federation, server_endpoint=evt.server_endpoint,
                          server_kit_ref=evt.server_kit_ref, admin_kit_ref=evt.admin_kit_ref,
                          admin_name=evt.admin_name, server_compute=evt.server_compute,
                          auto_deploy=evt.auto_deploy, admins=list(evt.admins),
                          server_kit=evt.server_kit)
    if evt.auto_deploy:
        # one session per federation keeps these in order: the server first, then sites
        uow.send(DeployServer(federation=evt.federation))
    for site in tables.site_names(db, evt.federation, wanted_only=True):
        uow.send(DeploySite(federation=evt.federation, site=site))


def record_site(evt: SiteProvisioned, *, uow: UnitOfWork, artifacts: ArtifactStore) -> None:
    own_kit(artifacts, evt.kit_ref, evt.kit, evt.federation, evt.site)
    db = uow.write()
    tables.save_site(db, federation=evt.federation, name=evt.site, org=evt.org,
                    kit_ref=evt.kit_ref, kit=evt.kit,
                    compute=evt.compute, want_deploy=evt.deploy, data=evt.data)
    known = tables.server_target(db, evt.federation) is not None
    if evt.deploy and known:
        uow.send(DeploySite(federation=evt.federation, site=evt.site))


def stop_removed_site(evt: SiteRemoved, *, uow: UnitOfWork, computes: Computes,
                      kits: KitCache) -> None:
    found = tables.deployment(uow.db, evt.federation, evt.site)
    stop(uow, evt.federation, evt.site, computes)
    known = tables.site_target(uow.db, evt.federation, evt.site)
    if known is not None and known.kit is not None:
        kits.forget(known.kit)  # its keys do not stay in the deployer's cache
    tables.mark_removed(uow.write(), evt.federation, evt.site)
    rolls.forget(uow.db, evt.federation, evt.site)
    uow.publish(SiteStopped(federation=evt.federation, site=evt.site, reason="removed",
                            generation=generation_of(found)))


COMMAND_HANDLERS = {
    DeployServer: deploy_server,
    DeploySite: deploy_site,
    StopSite: stop_site,
    RestartSite: restart_site,
    TeardownFederation: teardown_federation,
}
EVENT_HANDLERS = {
    FederationProvisioned: record_federation,
    SiteProvisioned: record_site,
    SiteRemoved: stop_removed_site,
    CertificateRenewed: rolls.roll_renewed,
    JobSubmitted: rolls.note_job_submitted,
    JobCompleted: rolls.note_job_ended,
    JobFailed: rolls.note_job_ended,
}


def _site_target(uow: UnitOfWork, federation: str, site: str) -> Target | None:
    target = tables.site_target(uow.db, federation, site)
    if target is None:
        known = tables.site_names(uow.db, federation)
        row = tables.site_row(uow.db, federation, site)
        why = ("was removed; add it again with AddSite" if row is not None else
               f"is not a provisioned site of federation {federation} "
               f"(known: {', '.join(known) or 'none'}); provision it or check the name")
        fail(uow, federation, site, f"site {site} {why}")
    return target


