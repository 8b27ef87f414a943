"""Running and stopping a participant, as every deployer handler does: the compute does it,
the deployment row records it, the events say it.

Every deploy is idempotent (the compute adopts a running copy), so a redelivered or
repeated command never starts a second process or job. A cause a person must fix
ends in DeploymentFailed; anything else is retried by the runtime.
"""
from __future__ import annotations

from dataclasses import replace

from arcflare.artifacts import ArtifactStore
from arcflare.contracts.artifacts import ArtifactRef
from arcflare.contracts.events import DeploymentFailed, ServerDeployed, SiteDeployed
from arcflare.deployer import tables
from arcflare.deployer.compute import SERVER, Computes, DeploymentError, Placement, Target
from arcflare.deployer.kit_sources import foreign_kit, runnable
from arcflare.flare.kit_artifacts import KitCache
from arcflare.runtime import Rejected, UnitOfWork, get_logger

log = get_logger("arcflare.deployer")


def own_kit(artifacts: ArtifactStore, kit_ref: str, kit: ArtifactRef | None, federation: str,
            participant: str) -> None:
    """Refuse, before anything is recorded, a kit that is not the provisioner's for it."""
    why = foreign_kit(kit_ref, kit, store=artifacts, federation=federation,
                      participant=participant)
    if why:
        log.error("refusing a kit that is not the provisioner's in the artifact store",
                  federation=federation, participant=participant, reason=why)
        raise Rejected("Forbidden", why)


def generation_of(found: tables.Deployment | None) -> int | None:
    return found.placement.generation if found is not None else None


def deploy(uow: UnitOfWork, target: Target, computes: Computes, kits: KitCache, *,
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
        fail(uow, target.federation, target.name, exc.reason, generation=generation,
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


def stop(uow: UnitOfWork, federation: str, name: str, computes: Computes) -> None:
    """Stop it if it runs (and record that it was asked to)."""
    found = tables.deployment(uow.db, federation, name)
    if found is None or not found.live:
        return
    computes.get(found.placement.backend).stop(found.placement)
    tables.record(uow.write(), federation, name, "stopped", found.placement, reason="requested",
                 command_id=found.command_id, correlation_id=found.correlation_id)
    log.info("stopped", federation=federation, target=name, handle=found.placement.handle)


def fail(uow: UnitOfWork, federation: str, target: str, reason: str, *,
         generation: int | None = None, restart: bool = False) -> None:
    tables.record(uow.write(), federation, target, "failed", reason=reason, generation=generation)
    uow.publish(DeploymentFailed(federation=federation, target=target, reason=reason,
                                 generation=generation, restart=restart))
