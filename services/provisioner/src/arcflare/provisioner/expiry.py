"""CertificateExpiring: scheduled when a certificate is issued, and checked at start-up.

NVFlare certificates expire silently (360 days by default). Every certificate we
issue gets a CertificateExpiring scheduled `warning` before its not_after; one
that is already inside that window (a short validity, or a wider window set
since) is announced at once by the start-up check, and only once. Removing a site
withdraws the scheduled warnings of its certificates; renewing one withdraws the
warning of the certificate it replaces (the new one gets its own).
"""
from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta

from arcflare.contracts.events import CertificateExpiring
from arcflare.provisioner.certificates import CertificateFacts
from arcflare.runtime import StateStore, UnitOfWork, get_logger

log = get_logger("arcflare.provisioner.expiry")


def _warning(federation: str, participant: str, kind: str, fingerprint: str,
             not_after: datetime, now: datetime) -> CertificateExpiring:
    return CertificateExpiring(
        federation=federation, participant=participant, kind=kind, fingerprint=fingerprint,
        not_after=not_after, days_left=max(0, (not_after - now).days),
    )


def record_certificate(
    uow: UnitOfWork, federation: str, participant: str, kind: str, cert: CertificateFacts,
    warning: timedelta, now: datetime | None = None,
) -> None:
    """Remember a certificate and schedule (or publish now) its expiry warning, once."""
    now = now or datetime.now(UTC)
    db = uow.write()
    known = db.execute(
        "SELECT 1 FROM certificates WHERE federation = ? AND fingerprint = ?",
        (federation, cert.fingerprint),
    ).fetchone()
    if known:
        return
    warn_at = cert.not_after - warning
    if warn_at > now:
        event = _warning(federation, participant, kind, cert.fingerprint, cert.not_after, warn_at)
        warning_id = uow.publish(event, at=warn_at)
        scheduled, warned = warn_at.isoformat(), None
    else:
        uow.publish(_warning(federation, participant, kind, cert.fingerprint, cert.not_after, now))
        warning_id, scheduled, warned = None, None, now.isoformat()
    db.execute(
        "INSERT INTO certificates (federation, participant, kind, fingerprint, not_after, "
        "warn_at, warned_at, warning_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (federation, participant, kind, cert.fingerprint, cert.not_after.isoformat(),
         scheduled, warned, warning_id),
    )


def withdraw_warnings(uow: UnitOfWork, federation: str, site: str) -> int:
    """Cancel the scheduled CertificateExpiring of a removed site's certificates: nobody
    is to renew them. Returns how many were withdrawn."""
    return _withdraw(uow, "federation = ? AND participant = ? AND kind = 'client'",
                     (federation, site))


def withdraw_warning(uow: UnitOfWork, federation: str, fingerprint: str) -> bool:
    """Cancel the scheduled CertificateExpiring of one certificate (a renewal replaced it)."""
    return bool(_withdraw(uow, "federation = ? AND fingerprint = ?", (federation, fingerprint)))


def _withdraw(uow: UnitOfWork, where: str, args: tuple) -> int:
    rows = uow.write().execute(
        f"SELECT warning_id FROM certificates WHERE {where} "
        "AND warning_id IS NOT NULL AND warned_at IS NULL", args,
    ).fetchall()
    return sum(uow.cancel_scheduled(row["warning_id"]) for row in rows)


def _due(db: sqlite3.Connection, warning: timedelta, now: datetime) -> list[sqlite3.Row]:
    rows = db.execute(
        """SELECT c.* FROM certificates c
           LEFT JOIN sites s ON s.federation = c.federation AND s.name = c.participant
                                AND c.kind = 'client'
           WHERE c.warned_at IS NULL AND c.replaced_by IS NULL
                 AND (s.status IS NULL OR s.status != 'removed')"""
    ).fetchall()
    due = []
    for row in rows:
        not_after = datetime.fromisoformat(row["not_after"])
        scheduled = datetime.fromisoformat(row["warn_at"]) if row["warn_at"] else None
        inside = not_after - warning <= now
        # a warning scheduled in the past has been delivered by the broker already
        if inside and (scheduled is None or scheduled > now):
            due.append(row)
    return due


def announce_expiring(state: StateStore, warning: timedelta, now: datetime | None = None) -> int:
    """Publish CertificateExpiring for every certificate inside the window not yet warned of."""
    now = now or datetime.now(UTC)
    with state.unit_of_work() as uow:
        due = _due(uow.db, warning, now)
        for row in due:
            not_after = datetime.fromisoformat(row["not_after"])
            uow.publish(_warning(row["federation"], row["participant"], row["kind"],
                                 row["fingerprint"], not_after, now))
            uow.write().execute(
                "UPDATE certificates SET warned_at = ? WHERE federation = ? AND fingerprint = ?",
                (now.isoformat(), row["federation"], row["fingerprint"]),
            )
    if due:
        log.warning("certificates inside the expiry window", count=len(due))
    return len(due)


def expiry_watch(state: StateStore, warning: timedelta, interval_s: float):
    """A background task: check at start-up, then every interval_s until stopped."""

    def watch_certificate_expiry(stop: threading.Event) -> None:
        while True:
            announce_expiring(state, warning)
            if stop.wait(interval_s):
                return

    return watch_certificate_expiry
