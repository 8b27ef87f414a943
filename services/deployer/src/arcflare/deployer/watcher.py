"""The deployment watcher: notices what changed on its own and says so.

Runs in the background every few seconds over every live deployment. On a restart
its first pass is the re-adoption: live processes are simply watched again, dead
ones are reported (SiteStopped, reason crashed). Azure ML jobs are polled and
their status mapped to events. It also carries out the rolls of renewed participants
that waited for their jobs to end (arcflare.deployer.rolls).
"""
from __future__ import annotations

import threading
from collections.abc import Callable

from arcflare.contracts.envelope import Envelope
from arcflare.contracts.events import DeploymentFailed, ParticipantRolled, SiteStopped
from arcflare.deployer import rolls, tables
from arcflare.deployer.compute import (
    SERVER,
    Computes,
    DeploymentError,
    Observation,
    Target,
)
from arcflare.deployer.deployments import deployed_event
from arcflare.deployer.rolls import restart_renewed
from arcflare.flare.kit_artifacts import KitCache
from arcflare.runtime import StateStore, get_logger

log = get_logger("arcflare.deployer.watcher")


def deployment_watcher(store: StateStore, computes: Computes, kits: KitCache,
                       interval_s: float) -> Callable[[threading.Event], None]:
    def watch(stop: threading.Event) -> None:
        while not stop.is_set():
            wait_s = interval_s
            try:
                wait_s = min(interval_s, check_deployments(store, computes) or interval_s)
                roll_when_jobs_ended(store, computes, kits)
            except Exception:  # one bad pass must not end the watching; the next one retries
                log.exception("watch pass failed")
            stop.wait(wait_s)

    return watch


def check_deployments(store: StateStore, computes: Computes) -> float | None:
    """One pass; returns how soon to look again when something is still starting on a
    compute that wants it looked at sooner than the usual interval."""
    with store.connect() as db:
        live = tables.deployments(db, live_only=True)
    sooner: float | None = None
    for found in live:
        try:
            compute = computes.get(found.placement.backend)
        except DeploymentError:
            continue
        seen = compute.observe(found.placement)
        if seen.status == "starting" and compute.starting_poll_s is not None:
            sooner = min(compute.starting_poll_s, sooner or compute.starting_poll_s)
        if seen.status in ("starting", "unknown") or (
                seen.status == "running" and found.status == "running"):
            continue
        if seen.status != "running" and compute.expected_exit(found.placement):
            continue
        if seen.status == "failed" and found.status == "starting":
            compute.stop(found.placement)  # nothing half-started is left behind
        _report(store, found, seen, stopped_with_stack=seen.status != "running"
                and compute.stopped_with_stack(found.placement))
    return sooner


def _report(store: StateStore, found: tables.Deployment, seen: Observation, *,
            stopped_with_stack: bool = False) -> None:
    # a request still waiting for its outcome (a queued Azure ML job) is named as the
    # cause of that outcome, so `--wait` ends; a later crash has no such cause
    cause = (Envelope(message_id=found.command_id, correlation_id=found.correlation_id,
                      type="DeployServer" if found.target == SERVER else "DeploySite",
                      federation=found.federation, issued_by=found.issued_by,
                      on_behalf_of=found.on_behalf_of)
             if found.command_id and found.status == "starting" else None)
    generation = found.placement.generation
    with store.unit_of_work(cause) as uow:
        db = uow.write()
        current = tables.deployment(db, found.federation, found.target)
        if current is None or current.status != found.status or (
                current.placement.handle != found.placement.handle):
            return  # a handler changed it meanwhile; its own events say what happened
        roll = rolls.held(db, found.federation, found.target)
        if roll is not None and roll.state == "restarting":
            rolls.forget(db, found.federation, found.target)
        if seen.status == "running":
            target = (tables.server_target(db, found.federation) if found.target == SERVER
                      else None) or Target(found.federation, found.target, "")
            tables.record(db, found.federation, found.target, "running", found.placement,
                         command_id=found.command_id, correlation_id=found.correlation_id,
                         issued_by=found.issued_by, on_behalf_of=found.on_behalf_of)
            uow.publish(deployed_event(target, found.placement))
            if roll is not None and roll.state == "restarting":
                uow.publish(rolls.rolled(roll))
        elif seen.status == "failed" and found.status == "starting":
            tables.record(db, found.federation, found.target, "failed", found.placement,
                         reason=seen.detail)
            uow.publish(DeploymentFailed(federation=found.federation, target=found.target,
                                         reason=seen.detail, generation=generation))
        elif stopped_with_stack:
            tables.record(db, found.federation, found.target, "stopped", found.placement,
                         reason="requested")
            uow.publish(SiteStopped(federation=found.federation, site=found.target,
                                    reason="requested", generation=generation))
        else:
            tables.record(db, found.federation, found.target, "crashed", found.placement,
                         reason=seen.detail)
            uow.publish(SiteStopped(federation=found.federation, site=found.target,
                                    reason="crashed", generation=generation))
        log.info("deployment changed", federation=found.federation, target=found.target,
                 status=seen.status, detail=seen.detail)


def roll_when_jobs_ended(store: StateStore, computes: Computes, kits: KitCache) -> None:
    """Restart each renewed participant whose roll waited for jobs that have now ended, in
    its renewal's name; one started again meanwhile (a RestartSite) runs its new kit already,
    and one stopped meanwhile will at its next start."""
    with store.connect() as db:
        waiting = rolls.due(db)
    for roll in waiting:
        with store.unit_of_work(roll.cause) as uow:
            db = uow.write()
            if rolls.held(db, roll.federation, roll.participant) != roll:
                continue  # a later renewal, or a removal, got there first
            found = tables.deployment(db, roll.federation, roll.participant)
            if found is None or not found.live or found.placement.generation != roll.generation:
                rolls.forget(db, roll.federation, roll.participant)
                uow.publish(ParticipantRolled(
                    federation=roll.federation, participant=roll.participant,
                    fingerprint=roll.fingerprint, restarted=bool(found and found.live),
                    waited_for=roll.jobs,
                    generation=found.placement.generation if found else None))
                continue
            log.info("jobs ended: rolling the renewed participant", federation=roll.federation,
                     participant=roll.participant, waited_for=roll.jobs)
            restart_renewed(uow, roll.federation, roll.participant, roll.fingerprint, computes, kits,
                            waited_for=roll.jobs)
