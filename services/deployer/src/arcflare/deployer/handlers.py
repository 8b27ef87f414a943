"""Deployer handlers: commands on the `deployer` queue, provisioning events on events/deployer
(and the renewals it rolls, with the jobs that may hold a roll up: arcflare.deployer.rolls).

Every deploy is idempotent (the compute adopts a running copy), so a redelivered or
repeated command never starts a second process or job. A cause a person must fix
ends in DeploymentFailed; anything else is retried by the runtime.
"""
from __future__ import annotations

from dataclasses import replace

from arcflare.artifacts import ArtifactStore
from arcflare.contracts.artifacts import ArtifactRef
from arcflare.contracts.commands import (
    DeployServer,
    DeploySite,
    RestartSite,
    StopSite,
    TeardownFederation,
)
from arcflare.contracts.events import (
    CertificateRenewed,
    DeploymentFailed,
    FederationProvisioned,
    FederationTornDown,
    JobCompleted,
    JobFailed,
    JobSubmitted,
    ParticipantRolled,
    RollPostponed,
    RollRefused,
    ServerDeployed,
    SiteDeployed,
    SiteProvisioned,
    SiteRemoved,
    SiteStopped,
)
from arcflare.deployer import rolls, tables
from arcflare.deployer.compute import SERVER, Computes, DeploymentError, Placement, Target
from arcflare.deployer.kit_sources import foreign_kit, runnable
from arcflare.flare.kit_artifacts import KitCache
from arcflare.runtime import Rejected, UnitOfWork, get_logger

log = get_logger("arcflare.deployer")


def deploy_server(cmd: DeployServer, *, uow: UnitOfWork, computes: Computes,
                  kits: KitCache) -> None:
    target = tables.server_target(uow.db, cmd.federation)
    if target is None:
        _fail(uow, cmd.federation, SERVER,
              f"federation {cmd.federation} is not provisioned (the deployer has seen no "
              "FederationProvisioned for it); create it first or check the name")
        return
    _deploy(uow, target, computes, kits)


def deploy_site(cmd: DeploySite, *, uow: UnitOfWork, computes: Computes,
                kits: KitCache) -> None:
    target = _site_target(uow, cmd.federation, cmd.site)
    if target is not None:
        _deploy(uow, target, computes, kits)


def stop_site(cmd: StopSite, *, uow: UnitOfWork, computes: Computes) -> None:
    found = tables.deployment(uow.db, cmd.federation, cmd.site)
    if found is None and tables.site_row(uow.db, cmd.federation, cmd.site) is None:
        raise Rejected("not_found", f"site: {cmd.site} is not a site of federation "
                                    f"{cmd.federation} known to the deployer")
    _stop(uow, cmd.federation, cmd.site, computes)
    uow.publish(SiteStopped(federation=cmd.federation, site=cmd.site, reason="requested",
                            generation=_generation(found)))


def restart_site(cmd: RestartSite, *, uow: UnitOfWork, computes: Computes,
                 kits: KitCache) -> None:
    target = _site_target(uow, cmd.federation, cmd.site)
    if target is None:
        return
    _stop(uow, cmd.federation, cmd.site, computes)
    _deploy(uow, target, computes, kits, restart=True)


def teardown_federation(cmd: TeardownFederation, *, uow: UnitOfWork, computes: Computes) -> None:
    live = tables.deployments(uow.db, federation=cmd.federation, live_only=True)
    # sites before the server, so no client logs a lost server on its way out
    stopped = [d.target for d in sorted(live, key=lambda d: d.target == SERVER)]
    generations = {d.target: d.placement.generation for d in live}
    for name in stopped:
        _stop(uow, cmd.federation, name, computes)
        if name != SERVER:
            uow.publish(SiteStopped(federation=cmd.federation, site=name, reason="requested",
                                    generation=generations[name]))
    uow.publish(FederationTornDown(federation=cmd.federation, stopped=stopped,
                                   server_generation=generations.get(SERVER)))


def record_federation(evt: FederationProvisioned, *, uow: UnitOfWork,
                      artifacts: ArtifactStore) -> None:
    _own_kit(artifacts, evt.server_kit_ref, evt.server_kit, evt.federation, SERVER)
    _own_kit(artifacts, evt.admin_kit_ref, evt.admin_kit, evt.federation, evt.admin_name)
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
    _own_kit(artifacts, evt.kit_ref, evt.kit, evt.federation, evt.site)
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
    _stop(uow, evt.federation, evt.site, computes)
    known = tables.site_target(uow.db, evt.federation, evt.site)
    if known is not None and known.kit is not None:
        kits.forget(known.kit)  # its keys do not stay in the deployer's cache
    tables.mark_removed(uow.write(), evt.federation, evt.site)
    rolls.forget(uow.db, evt.federation, evt.site)
    uow.publish(SiteStopped(federation=evt.federation, site=evt.site, reason="removed",
                            generation=_generation(found)))


def roll_renewed(evt: CertificateRenewed, *, uow: UnitOfWork, computes: Computes,
                 kits: KitCache) -> None:
    """A renewed participant's next start uses its new kit; a running one is restarted from
    it now, or once the jobs it runs have ended, or not (the renewal's option)."""
    if evt.kind == "admin":
        return  # nothing the deployer runs: the job-controller logs in with it
    name = SERVER if evt.kind == "server" else evt.participant
    db = uow.write()
    if not tables.renew_kit(db, evt.federation, name, evt.kit_ref, evt.kit):
        log.warning("renewed kit of a participant the deployer does not know; nothing to roll",
                    federation=evt.federation, participant=name)
        return
    found = tables.deployment(db, evt.federation, name)
    fact = {"federation": evt.federation, "participant": name, "fingerprint": evt.new_fingerprint}
    if found is None or not found.live:
        uow.publish(ParticipantRolled(**fact, restarted=False))
        return
    jobs = rolls.jobs_on(db, evt.federation, name)
    if jobs and evt.if_job_running == "refuse":
        uow.publish(RollRefused(**fact, reason=rolls.refusal(name, jobs), jobs=jobs))
    elif jobs:
        rolls.hold(db, rolls.Roll(evt.federation, name, evt.new_fingerprint, "waiting", jobs,
                                  found.placement.generation, uow.envelope))
        uow.publish(RollPostponed(**fact, jobs=jobs))
    else:
        restart_renewed(uow, evt.federation, name, evt.new_fingerprint, computes, kits)


def restart_renewed(uow: UnitOfWork, federation: str, name: str, fingerprint: str,
                    computes: Computes, kits: KitCache,
                    waited_for: list[str] | None = None) -> None:
    """Stop the participant and start it from its (new) kit; the roll is announced once it
    runs (a server once it listens: the watcher says so then). The server's running sites
    are restarted with it: an NVFlare client's session token is signed with the server's
    key, so a client registers again with a server that has a new one, or never talks to it."""
    target = (tables.server_target(uow.db, federation) if name == SERVER
              else tables.site_target(uow.db, federation, name))
    if target is None:
        return  # removed meanwhile
    sites = [d.target for d in tables.deployments(uow.db, federation=federation, live_only=True)
             if d.target != SERVER] if name == SERVER else []
    for site in sites:  # first, so no client logs a lost server on its way out
        _stop(uow, federation, site, computes)
    _stop(uow, federation, name, computes)
    placement = _deploy(uow, target, computes, kits, restart=True)
    for site in sites:  # each retries until the server listens, as a person's would
        if (site_target := tables.site_target(uow.db, federation, site)) is not None:
            _deploy(uow, site_target, computes, kits, restart=True)
    rolls.forget(uow.db, federation, name)
    if placement is None:
        return  # DeploymentFailed says why; the new kit stays its next start's
    roll = rolls.Roll(federation, name, fingerprint, "restarting", waited_for or [],
                      placement.generation, uow.envelope, sites)
    if placement.ready:
        uow.publish(rolls.rolled(roll))
    else:
        rolls.hold(uow.db, roll)


def note_job_submitted(evt: JobSubmitted, *, uow: UnitOfWork) -> None:
    rolls.note_job(uow.write(), evt.federation, evt.job_id, evt.sites)


def note_job_ended(evt: JobCompleted | JobFailed, *, uow: UnitOfWork) -> None:
    """The rolls that waited for it are carried out by the watcher, in their renewal's name."""
    if evt.job_id is not None:
        rolls.end_job(uow.write(), evt.federation, evt.job_id)


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
    CertificateRenewed: roll_renewed,
    JobSubmitted: note_job_submitted,
    JobCompleted: note_job_ended,
    JobFailed: note_job_ended,
}


def _own_kit(artifacts: ArtifactStore, kit_ref: str, kit: ArtifactRef | None, federation: str,
             participant: str) -> None:
    """Refuse, before anything is recorded, a kit that is not the provisioner's for it."""
    why = foreign_kit(kit_ref, kit, store=artifacts, federation=federation,
                      participant=participant)
    if why:
        log.error("refusing a kit that is not the provisioner's in the artifact store",
                  federation=federation, participant=participant, reason=why)
        raise Rejected("Forbidden", why)


def _site_target(uow: UnitOfWork, federation: str, site: str) -> Target | None:
    target = tables.site_target(uow.db, federation, site)
    if target is None:
        known = tables.site_names(uow.db, federation)
        row = tables.site_row(uow.db, federation, site)
        why = ("was removed; add it again with AddSite" if row is not None else
               f"is not a provisioned site of federation {federation} "
               f"(known: {', '.join(known) or 'none'}); provision it or check the name")
        _fail(uow, federation, site, f"site {site} {why}")
    return target


def _generation(found: tables.Deployment | None) -> int | None:
    return found.placement.generation if found is not None else None


def _deploy(uow: UnitOfWork, target: Target, computes: Computes, kits: KitCache, *,
            restart: bool = False) -> Placement | None:
    """Run the target (or adopt its running copy); None when it failed (DeploymentFailed)."""
    previous = tables.deployment(uow.db, target.federation, target.name)
    generation = 1
    if previous is not None and previous.placement.generation:
        # a live one keeps its generation, so the compute finds it instead of starting another
        generation = previous.placement.generation + (0 if previous.live else 1)
    target = replace(target, generation=generation)
    bound = log.bind(federation=target.federation, target=target.name,
                     backend=target.compute.backend, generation=generation)
    try:
        compute = computes.get(target.compute.backend)
        placement = compute.deploy(runnable(target, kits),
                                   previous.placement if previous else None)
    except DeploymentError as exc:
        bound.warning("deployment failed", reason=exc.reason)
        _fail(uow, target.federation, target.name, exc.reason, generation=generation,
              restart=restart)
        return None
    envelope = uow.envelope
    tables.record(uow.write(), target.federation, target.name,
                 "running" if placement.ready else "starting", placement,
                 command_id=envelope.message_id if envelope else None,
                 correlation_id=envelope.correlation_id if envelope else None,
                 issued_by=envelope.issued_by if envelope else None,
                 on_behalf_of=envelope.on_behalf_of if envelope else None)
    bound.info("deployed", handle=placement.handle, adopted=placement.adopted,
               ready=placement.ready)
    if placement.ready:
        uow.publish(deployed_event(target, placement, restart=restart))
    return placement


def deployed_event(target: Target, placement: Placement, *,
                   restart: bool = False) -> ServerDeployed | SiteDeployed:
    if target.name == SERVER:
        return ServerDeployed(federation=target.federation, endpoint=target.endpoint or "",
                              backend=placement.backend, handle=placement.handle,
                              generation=placement.generation)
    return SiteDeployed(federation=target.federation, site=target.name,
                        backend=placement.backend, handle=placement.handle,
                        generation=placement.generation, restart=restart)


def _stop(uow: UnitOfWork, federation: str, name: str, computes: Computes) -> None:
    found = tables.deployment(uow.db, federation, name)
    if found is None or not found.live:
        return
    computes.get(found.placement.backend).stop(found.placement)
    tables.record(uow.write(), federation, name, "stopped", found.placement, reason="requested",
                 command_id=found.command_id, correlation_id=found.correlation_id)
    log.info("stopped", federation=federation, target=name, handle=found.placement.handle)


def _fail(uow: UnitOfWork, federation: str, target: str, reason: str, *,
          generation: int | None = None, restart: bool = False) -> None:
    tables.record(uow.write(), federation, target, "failed", reason=reason, generation=generation)
    uow.publish(DeploymentFailed(federation=federation, target=target, reason=reason,
                                 generation=generation, restart=restart))
