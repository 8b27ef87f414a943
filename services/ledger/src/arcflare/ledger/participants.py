"""The participants' facts: lifecycle (the deployer's), health (each site's agent),
the server's engine (the job-controller's observations) and certificates (the
provisioner's). The server is a participant like a site and gets the same facts.
"""
from __future__ import annotations

import sqlite3

from arcflare.contracts import events as e
from arcflare.contracts.envelope import Envelope
from arcflare.ledger.rows import (
    dump_json,
    ensure_row,
    generation_version,
    raise_to,
    timestamp,
    upsert_group,
    version,
)

SERVER = "server"
CA = "rootCA"
#: within one deployment generation: a failed attempt, then running, then its end
RANK = {"deploy_failed": 0, "running": 1, "started": 1, "stopped": 2, "crashed": 2, "removed": 2}
STOPPED = {"requested": "stopped", "crashed": "crashed", "removed": "removed"}


def lifecycle(db: sqlite3.Connection, env: Envelope, federation: str, participant: str,
              state: str, *, generation: int | None, reason: str | None = None,
              handle: str | None = None) -> None:
    """One lifecycle fact of the server or a site, ordered by the deployer's generation."""
    v = generation_version(env, generation, RANK[state])
    at = timestamp(env.occurred_at)
    if participant == SERVER:
        upsert_group(db, "federations", {"name": federation}, "server_lifecycle_v", v, {
            "server_lifecycle": state, "server_lifecycle_reason": reason,
            "server_handle": handle, "server_generation": generation,
            "server_lifecycle_at": at,
        })
        return
    upsert_group(db, "sites", {"federation": federation, "site": participant}, "lifecycle_v", v, {
        "lifecycle": state, "lifecycle_reason": reason, "handle": handle,
        "generation": generation, "lifecycle_at": at,
    })


def certificate(db: sqlite3.Connection, env: Envelope, federation: str, participant: str,
                kind: str, fingerprint: str | None, not_after) -> None:
    """A newer certificate replaces the one on record, whatever the order: a later not_after,
    or at the same not_after (a renewal the CA's own end cuts short) the one the provisioner
    told of later."""
    if not_after is None:
        return
    upsert_group(db, "certificates",
                 {"federation": federation, "participant": participant, "kind": kind}, "v",
                 certificate_version(env, fingerprint, not_after),
                 {"fingerprint": fingerprint, "not_after": timestamp(not_after)})


def certificate_version(env: Envelope, fingerprint: str | None, not_after) -> str:
    return f"{timestamp(not_after)}|{timestamp(env.occurred_at)}|{fingerprint or ''}"


def site_kit(db: sqlite3.Connection, env: Envelope, federation: str, site: str, kit_ref: str,
             fingerprint: str, not_after) -> None:
    """A site's kit and certificate, in the certificates' order (a renewal's kit wins)."""
    upsert_group(db, "sites", {"federation": federation, "site": site}, "kit_v",
                 certificate_version(env, fingerprint, not_after),
                 {"kit_ref": kit_ref, "cert_fingerprint": fingerprint})
    certificate(db, env, federation, site, "client", fingerprint, not_after)


def federation_provisioned(db, env, ev: e.FederationProvisioned, _r) -> None:
    upsert_group(db, "federations", {"name": ev.federation}, "provisioned_v", version(env), {
        "server_endpoint": ev.server_endpoint, "ca_fingerprint": ev.ca_fingerprint,
        "admin_name": ev.admin_name, "admins": dump_json([a.model_dump() for a in ev.admins]),
        "provisioned_at": timestamp(env.occurred_at),
    })
    certificate(db, env, ev.federation, CA, "ca", ev.ca_fingerprint, ev.ca_not_after)
    certificate(db, env, ev.federation, SERVER, "server", ev.server_cert_fingerprint,
                ev.server_not_after)
    for admin in ev.admin_certificates:
        certificate(db, env, ev.federation, admin.participant, "admin", admin.fingerprint,
                    admin.not_after)
    for site in ev.sites:
        ensure_row(db, "sites", {"federation": ev.federation, "site": site})


def site_provisioned(db, env, ev: e.SiteProvisioned, _r) -> None:
    upsert_group(db, "sites", {"federation": ev.federation, "site": ev.site}, "provisioned_v",
                 version(env), {"org": ev.org, "compute": dump_json(ev.compute.model_dump())})
    site_kit(db, env, ev.federation, ev.site, ev.kit_ref, ev.cert_fingerprint, ev.not_after)


def site_removed(db, env, ev: e.SiteRemoved, _r) -> None:
    # removal is final: a removed site's name cannot be provisioned again
    ensure_row(db, "sites", {"federation": ev.federation, "site": ev.site})
    db.execute("UPDATE sites SET removed = 1 WHERE federation = ? AND site = ?",
               (ev.federation, ev.site))


def certificate_expiring(db, env, ev: e.CertificateExpiring, _r) -> None:
    certificate(db, env, ev.federation, ev.participant, ev.kind, ev.fingerprint, ev.not_after)


def certificate_renewed(db, env, ev: e.CertificateRenewed, _r) -> None:
    if ev.kind == "client":
        site_kit(db, env, ev.federation, ev.participant, ev.kit_ref, ev.new_fingerprint,
                 ev.not_after)
    else:
        certificate(db, env, ev.federation, ev.participant, ev.kind, ev.new_fingerprint,
                    ev.not_after)


def server_deployed(db, env, ev: e.ServerDeployed, _r) -> None:
    lifecycle(db, env, ev.federation, SERVER, "running", generation=ev.generation,
              handle=f"{ev.backend} {ev.handle}")


def site_deployed(db, env, ev: e.SiteDeployed, _r) -> None:
    lifecycle(db, env, ev.federation, ev.site, "started", generation=ev.generation,
              reason="restarted on request" if ev.restart else None,
              handle=f"{ev.backend} {ev.handle}")


def deployment_failed(db, env, ev: e.DeploymentFailed, _r) -> None:
    lifecycle(db, env, ev.federation, ev.target, "deploy_failed", generation=ev.generation,
              reason=ev.reason)


def site_stopped(db, env, ev: e.SiteStopped, _r) -> None:
    lifecycle(db, env, ev.federation, ev.site, STOPPED[ev.reason], generation=ev.generation,
              reason=ev.reason)


def federation_torn_down(db, env, ev: e.FederationTornDown, _r) -> None:
    lifecycle(db, env, ev.federation, SERVER, "stopped", generation=ev.server_generation,
              reason="torn down")


def site_health(db, env, ev: e.SiteHealthChanged | e.SiteHeartbeat, _r) -> None:
    key = {"federation": ev.federation, "site": ev.site}
    upsert_group(db, "sites", key, "health_v", version(env), {
        "health": ev.status, "diagnosis": ev.diagnosis,
        "diagnosis_code": ev.diagnosis_code or None, "health_at": timestamp(env.occurred_at),
    })
    if isinstance(ev, e.SiteHeartbeat):
        upsert_group(db, "sites", key, "heartbeat_v", version(env), {
            "last_heartbeat": timestamp(env.occurred_at), "pid": ev.pid,
            "current_job": ev.current_job, "uptime_s": ev.uptime_s,
        })


def status_observed(db, env, ev: e.FederationStatusObserved, _r) -> None:
    upsert_group(db, "federations", {"name": ev.federation}, "observed_v", version(env), {
        "server_status": ev.server_status, "running_jobs": dump_json(ev.running_jobs),
        "observed_clients": dump_json(sorted(c.name for c in ev.clients)),
        "observed_at": timestamp(env.occurred_at),
    })
    for client in ev.clients:
        raise_to(db, "sites", {"federation": ev.federation, "site": client.name},
                 "last_connect_time", timestamp(client.last_connect_time))


PROJECTIONS = {
    e.FederationProvisioned: federation_provisioned,
    e.SiteProvisioned: site_provisioned,
    e.SiteRemoved: site_removed,
    e.CertificateExpiring: certificate_expiring,
    e.CertificateRenewed: certificate_renewed,
    e.ServerDeployed: server_deployed,
    e.SiteDeployed: site_deployed,
    e.DeploymentFailed: deployment_failed,
    e.SiteStopped: site_stopped,
    e.FederationTornDown: federation_torn_down,
    e.SiteHealthChanged: site_health,
    e.SiteHeartbeat: site_health,
    e.FederationStatusObserved: status_observed,
}
