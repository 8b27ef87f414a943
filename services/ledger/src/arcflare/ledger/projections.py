"""How each event changes the ledger: the audit trail and the read model.

`record(db, envelope, retention)` is the one entry point; it runs inside the
runtime's transaction (so the inbox row and these writes commit together).
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from arcflare.contracts import events as e
from arcflare.contracts.base import Message
from arcflare.contracts.envelope import Envelope
from arcflare.ledger.audit import record_outcome
from arcflare.ledger.rows import ensure_row, keep_newest, raise_to, timestamp, upsert_group, version


@dataclass(frozen=True)
class Retention:
    log_tails_per_site: int = 20
    flare_events_per_federation: int = 200


def _dump(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def record(db: sqlite3.Connection, envelope: Envelope, retention: Retention = Retention()) -> None:
    event = envelope.open()
    if not isinstance(event, e.Telemetry):
        db.execute(
            "INSERT OR IGNORE INTO events (message_id, type, federation, site, correlation_id,"
            " causation_id, issued_by, occurred_at, payload) VALUES (?,?,?,?,?,?,?,?,?)",
            (envelope.message_id, envelope.type, envelope.federation, envelope.site,
             envelope.correlation_id, envelope.causation_id, envelope.issued_by,
             timestamp(envelope.occurred_at), _dump(envelope.payload)),
        )
        record_outcome(db, envelope, event)
    project = _PROJECTIONS.get(type(event))
    if project is not None:
        project(db, envelope, event, retention)


def _federation_provisioned(db, env, ev: e.FederationProvisioned, _r) -> None:
    upsert_group(db, "federations", {"name": ev.federation}, "provisioned_v", version(env), {
        "server_endpoint": ev.server_endpoint, "ca_fingerprint": ev.ca_fingerprint,
        "admin_name": ev.admin_name, "admins": _dump([a.model_dump() for a in ev.admins]),
        "provisioned_at": timestamp(env.occurred_at),
    })
    if not ev.existing:
        _federation_lifecycle(db, env, ev.federation, "provisioned")
    for site in ev.sites:
        ensure_row(db, "sites", {"federation": ev.federation, "site": site})


def _federation_lifecycle(db, env, federation: str, state: str, reason: str | None = None) -> None:
    upsert_group(db, "federations", {"name": federation}, "lifecycle_v", version(env),
                 {"lifecycle": state, "lifecycle_reason": reason})


def _site_lifecycle(db, env, federation, site, state, reason=None, handle=None) -> None:
    upsert_group(db, "sites", {"federation": federation, "site": site}, "lifecycle_v",
                 version(env), {"lifecycle": state, "lifecycle_reason": reason, "handle": handle})


def _site_provisioned(db, env, ev: e.SiteProvisioned, _r) -> None:
    key = {"federation": ev.federation, "site": ev.site}
    upsert_group(db, "sites", key, "provisioned_v", version(env), {
        "org": ev.org, "kit_ref": ev.kit_ref, "cert_fingerprint": ev.cert_fingerprint,
        "compute": _dump(ev.compute.model_dump()),
    })
    upsert_group(db, "certificates",
                 {"federation": ev.federation, "participant": ev.site, "kind": "client"}, "v",
                 version(env), {"fingerprint": ev.cert_fingerprint,
                                "not_after": timestamp(ev.not_after), "days_left": None})
    if not ev.existing:
        _site_lifecycle(db, env, ev.federation, ev.site, "provisioned")


def _certificate_expiring(db, env, ev: e.CertificateExpiring, _r) -> None:
    upsert_group(db, "certificates",
                 {"federation": ev.federation, "participant": ev.participant, "kind": ev.kind},
                 "v", version(env), {"fingerprint": ev.fingerprint,
                                     "not_after": timestamp(ev.not_after),
                                     "days_left": ev.days_left})


def _server_deployed(db, env, ev: e.ServerDeployed, _r) -> None:
    _federation_lifecycle(db, env, ev.federation, "running", f"{ev.backend} {ev.handle}")


def _deployment_failed(db, env, ev: e.DeploymentFailed, _r) -> None:
    if ev.target == "server":
        _federation_lifecycle(db, env, ev.federation, "server_failed", ev.reason)
    else:
        _site_lifecycle(db, env, ev.federation, ev.target, "deploy_failed", ev.reason)


def _federation_torn_down(db, env, ev: e.FederationTornDown, _r) -> None:
    _federation_lifecycle(db, env, ev.federation, "torn_down")


def _site_deployed(db, env, ev: e.SiteDeployed, _r) -> None:
    _site_lifecycle(db, env, ev.federation, ev.site, "started", None, f"{ev.backend} {ev.handle}")


def _site_client_restarted(db, env, ev: e.SiteClientRestarted, _r) -> None:
    _site_lifecycle(db, env, ev.federation, ev.site, "started", "client restarted", ev.handle)


def _site_stopped(db, env, ev: e.SiteStopped, _r) -> None:
    state = {"requested": "stopped", "crashed": "crashed", "removed": "removed"}[ev.reason]
    _site_lifecycle(db, env, ev.federation, ev.site, state, ev.reason)


def _site_removed(db, env, ev: e.SiteRemoved, _r) -> None:
    _site_lifecycle(db, env, ev.federation, ev.site, "removed")


def _site_health(db, env, ev: e.SiteHealthChanged | e.SiteHeartbeat, _r) -> None:
    key = {"federation": ev.federation, "site": ev.site}
    upsert_group(db, "sites", key, "health_v", version(env), {
        "health": ev.status, "diagnosis": ev.diagnosis, "health_at": timestamp(env.occurred_at),
    })
    if isinstance(ev, e.SiteHeartbeat):
        upsert_group(db, "sites", key, "heartbeat_v", version(env), {
            "last_heartbeat": timestamp(env.occurred_at), "pid": ev.pid,
            "current_job": ev.current_job, "uptime_s": ev.uptime_s,
        })


def _status_observed(db, env, ev: e.FederationStatusObserved, _r) -> None:
    upsert_group(db, "federations", {"name": ev.federation}, "observed_v", version(env), {
        "server_status": ev.server_status, "running_jobs": _dump(ev.running_jobs),
        "observed_clients": _dump(sorted(c.name for c in ev.clients)),
        "observed_at": timestamp(env.occurred_at),
    })
    for client in ev.clients:
        raise_to(db, "sites", {"federation": ev.federation, "site": client.name},
                 "last_connect_time", timestamp(client.last_connect_time))


def _job_status(db, env, federation: str, job_id: str, status: str) -> None:
    final = 1 if status.startswith("FINISHED") or status == "FAILED_TO_SUBMIT" else 0
    upsert_group(db, "jobs", {"federation": federation, "job_id": job_id}, "status_v",
                 version(env, rank=final), {"status": status,
                                            "status_at": timestamp(env.occurred_at)})
    db.execute(
        "INSERT OR IGNORE INTO job_status_history (message_id, federation, job_id, status,"
        " occurred_at, v) VALUES (?,?,?,?,?,?)",
        (env.message_id, federation, job_id, status, timestamp(env.occurred_at), version(env)),
    )


def _job_submitted(db, env, ev: e.JobSubmitted, _r) -> None:
    upsert_group(db, "jobs", {"federation": ev.federation, "job_id": ev.job_id}, "submit_v",
                 version(env), {"name": ev.name, "sites": _dump(ev.sites), "rounds": ev.rounds,
                                "submitted_at": timestamp(env.occurred_at)})
    _job_status(db, env, ev.federation, ev.job_id, "SUBMITTED")


def _job_status_changed(db, env, ev: e.JobStatusChanged, _r) -> None:
    _job_status(db, env, ev.federation, ev.job_id, ev.status)


def _job_completed(db, env, ev: e.JobCompleted, _r) -> None:
    upsert_group(db, "jobs", {"federation": ev.federation, "job_id": ev.job_id}, "outcome_v",
                 version(env), {"duration_s": ev.duration_s, "result_ref": ev.result_ref,
                                "reason": ev.reason, "name": ev.name})
    _job_status(db, env, ev.federation, ev.job_id, ev.status)


def _job_failed(db, env, ev: e.JobFailed, _r) -> None:
    # a job that never got an NVFlare id is kept under the id of the command that asked for it
    job_id = ev.job_id or f"unsubmitted-{env.causation_id or env.message_id}"
    upsert_group(db, "jobs", {"federation": ev.federation, "job_id": job_id}, "outcome_v",
                 version(env), {"reason": ev.reason, "name": ev.name})
    _job_status(db, env, ev.federation, job_id, "FAILED_TO_SUBMIT")


def _model_registered(db, env, ev: e.ModelRegistered, _r) -> None:
    upsert_group(db, "jobs", {"federation": ev.federation, "job_id": ev.job_id}, "model_v",
                 version(env), {"model_name": ev.name, "model_version": ev.version,
                                "run_id": ev.run_id})


def _metrics_reported(db, env, ev: e.MetricsReported, _r) -> None:
    # the final value of a metric is its point with the highest step (then time)
    for point in ev.points:
        upsert_group(
            db, "job_metrics",
            {"federation": ev.federation, "job_id": ev.job_id, "site": ev.site, "key": point.key},
            "v", f"{point.step:012d}|{point.timestamp_ms:015d}|{env.message_id}",
            {"value": point.value, "step": point.step},
        )


def _log_tail(db, env, ev: e.SiteLogTail, retention: Retention) -> None:
    ensure_row(db, "sites", {"federation": ev.federation, "site": ev.site})
    db.execute(
        "INSERT OR IGNORE INTO log_tails (message_id, federation, site, file, lines, truncated,"
        " redacted_count, request_id, occurred_at, v) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (env.message_id, ev.federation, ev.site, ev.file, _dump(ev.lines), int(ev.truncated),
         ev.redacted_count, ev.request_id, timestamp(env.occurred_at), version(env)),
    )
    keep_newest(db, "log_tails", {"federation": ev.federation, "site": ev.site},
                retention.log_tails_per_site)


def _flare_event(db, env, ev: e.FlareEventObserved, retention: Retention) -> None:
    db.execute(
        "INSERT OR IGNORE INTO flare_events (message_id, federation, job_id, site, event, detail,"
        " occurred_at, v) VALUES (?,?,?,?,?,?,?,?)",
        (env.message_id, ev.federation, ev.job_id, ev.site, ev.event, _dump(ev.detail),
         timestamp(env.occurred_at), version(env)),
    )
    keep_newest(db, "flare_events", {"federation": ev.federation},
                retention.flare_events_per_federation)


def _alert_raised(db, env, ev: e.AlertRaised, _r) -> None:
    db.execute(
        "INSERT OR IGNORE INTO alerts (message_id, rule, severity, summary, federation, site,"
        " source_type, source_message_id, occurred_at, v) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (env.message_id, ev.rule, ev.severity, ev.summary, ev.federation, ev.site,
         ev.source_type, ev.source_message_id, timestamp(env.occurred_at), version(env)),
    )


_PROJECTIONS: dict[type[Message], Callable[..., None]] = {
    e.FederationProvisioned: _federation_provisioned,
    e.SiteProvisioned: _site_provisioned,
    e.CertificateExpiring: _certificate_expiring,
    e.ServerDeployed: _server_deployed,
    e.DeploymentFailed: _deployment_failed,
    e.FederationTornDown: _federation_torn_down,
    e.SiteDeployed: _site_deployed,
    e.SiteClientRestarted: _site_client_restarted,
    e.SiteStopped: _site_stopped,
    e.SiteRemoved: _site_removed,
    e.SiteHealthChanged: _site_health,
    e.SiteHeartbeat: _site_health,
    e.FederationStatusObserved: _status_observed,
    e.JobSubmitted: _job_submitted,
    e.JobStatusChanged: _job_status_changed,
    e.JobCompleted: _job_completed,
    e.JobFailed: _job_failed,
    e.ModelRegistered: _model_registered,
    e.MetricsReported: _metrics_reported,
    e.SiteLogTail: _log_tail,
    e.FlareEventObserved: _flare_event,
    e.AlertRaised: _alert_raised,
}
