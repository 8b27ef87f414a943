"""How each event changes the ledger: the audit trail and the read model.

`record(db, envelope, retention)` is the one entry point; it runs inside the
runtime's transaction (so the inbox row and these writes commit together).
"""
from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from arcflare.contracts import events as e
from arcflare.contracts.base import Message
from arcflare.contracts.envelope import Envelope
from arcflare.ledger import participants
from arcflare.ledger.audit import record_outcome
from arcflare.ledger.rows import (
    dump_json,
    ensure_row,
    keep_newest,
    timestamp,
    upsert_group,
    version,
)


@dataclass(frozen=True)
class Retention:
    log_tails_per_site: int = 20
    flare_events_per_federation: int = 200


def record(db: sqlite3.Connection, envelope: Envelope, retention: Retention = Retention()) -> None:
    event = envelope.open()
    if not isinstance(event, e.Telemetry):
        db.execute(
            "INSERT OR IGNORE INTO events (message_id, type, federation, site, correlation_id,"
            " causation_id, issued_by, occurred_at, payload) VALUES (?,?,?,?,?,?,?,?,?)",
            (envelope.message_id, envelope.type, envelope.federation, envelope.site,
             envelope.correlation_id, envelope.causation_id, envelope.issued_by,
             timestamp(envelope.occurred_at), dump_json(envelope.payload)),
        )
        record_outcome(db, envelope, event)
    project = _PROJECTIONS.get(type(event))
    if project is not None:
        project(db, envelope, event, retention)


def is_final(status: str | None) -> bool:
    """NVFlare's final states, and ours for a job it never got."""
    return str(status).startswith("FINISHED") or status == "FAILED_TO_SUBMIT"


def _job_status(db, env, federation: str, job_id: str, status: str) -> None:
    final = 1 if is_final(status) else 0
    upsert_group(db, "jobs", {"federation": federation, "job_id": job_id}, "status_v",
                 version(env, rank=final), {"status": status,
                                            "status_at": timestamp(env.occurred_at)})
    db.execute(
        "INSERT OR IGNORE INTO job_status_history (message_id, federation, job_id, status,"
        " occurred_at, v) VALUES (?,?,?,?,?,?)",
        (env.message_id, federation, job_id, status, timestamp(env.occurred_at), version(env)),
    )


def _waiting_job_id(env: Envelope) -> str:
    # until NVFlare gives a job its id, it is known by the id of the SubmitJob that asked
    return env.causation_id or env.message_id


def _job_waiting(db, env, ev: e.JobWaitingForClients, _r) -> None:
    job_id = _waiting_job_id(env)
    # every one of these events names the same moment of acceptance, in whatever order
    accepted = ev.clients_deadline - timedelta(seconds=ev.clients_timeout_s)
    upsert_group(db, "jobs", {"federation": ev.federation, "job_id": job_id}, "submit_v",
                 version(env), {"name": ev.name, "sites": dump_json(ev.sites or []),
                                "submitted_at": timestamp(accepted)})
    _job_status(db, env, ev.federation, job_id, "WAITING_FOR_CLIENTS")


def _job_submitted(db, env, ev: e.JobSubmitted, _r) -> None:
    upsert_group(db, "jobs", {"federation": ev.federation, "job_id": ev.job_id}, "submit_v",
                 version(env), {"name": ev.name, "sites": dump_json(ev.sites), "rounds": ev.rounds,
                                "submitted_at": timestamp(env.occurred_at)})
    _job_status(db, env, ev.federation, ev.job_id, "SUBMITTED")
    # the job that waited for clients under its SubmitJob's id goes on under NVFlare's
    waited = {"federation": ev.federation, "job_id": _waiting_job_id(env)}
    ensure_row(db, "jobs", waited)
    db.execute("UPDATE jobs SET submitted_as = ? WHERE federation = ? AND job_id = ?",
               (ev.job_id, *waited.values()))


def _job_status_changed(db, env, ev: e.JobStatusChanged, _r) -> None:
    _job_status(db, env, ev.federation, ev.job_id, ev.status)


def _job_completed(db, env, ev: e.JobCompleted, _r) -> None:
    upsert_group(db, "jobs", {"federation": ev.federation, "job_id": ev.job_id}, "outcome_v",
                 version(env), {"duration_s": ev.duration_s, "result_ref": ev.result_ref,
                                "reason": ev.reason, "name": ev.name})
    _job_status(db, env, ev.federation, ev.job_id, ev.status)


def _job_failed(db, env, ev: e.JobFailed, _r) -> None:
    job_id = ev.job_id or _waiting_job_id(env)
    reason = f"{ev.reason}: {ev.detail}" if ev.detail else ev.reason
    upsert_group(db, "jobs", {"federation": ev.federation, "job_id": job_id}, "outcome_v",
                 version(env), {"reason": reason, "name": ev.name})
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
        (env.message_id, ev.federation, ev.site, ev.file, dump_json(ev.lines), int(ev.truncated),
         ev.redacted_count, ev.request_id, timestamp(env.occurred_at), version(env)),
    )
    keep_newest(db, "log_tails", {"federation": ev.federation, "site": ev.site},
                retention.log_tails_per_site)


def _flare_event(db, env, ev: e.FlareEventObserved, retention: Retention) -> None:
    db.execute(
        "INSERT OR IGNORE INTO flare_events (message_id, federation, job_id, site, event, detail,"
        " occurred_at, v) VALUES (?,?,?,?,?,?,?,?)",
        (env.message_id, ev.federation, ev.job_id, ev.site, ev.event, dump_json(ev.detail),
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
    **participants.PROJECTIONS,
    e.JobWaitingForClients: _job_waiting,
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
