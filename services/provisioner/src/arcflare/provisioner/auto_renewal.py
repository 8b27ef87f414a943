"""Automatic renewal (opt-in: ARCFLARE_CERT_AUTO_RENEW_DAYS).

The provisioner renews a certificate on its own `ahead` before its not_after, exactly as
a RenewCertificate would (CertificateRenewed, automatic=True), so the deployer rolls the
participant as usual, waiting for a running job. A renewed certificate runs NVFlare's term
(360 days) but never past its CA, so a certificate is left alone when its CA does not
outlive it by a day: no renewal could extend it, only a new CA can, and the CA's own
expiry is warned of (CertificateExpiring, kind ca) and alerted.
"""
from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from arcflare.artifacts import ArtifactStore
from arcflare.flare.kits import KitStore
from arcflare.provisioner import tables
from arcflare.provisioner.renewal import holder, renew
from arcflare.provisioner.settings import ProvisionerSettings
from arcflare.runtime import Rejected, StateStore, get_logger
from arcflare.trust.authority import Issuer

log = get_logger("arcflare.provisioner.auto_renewal")
#: how much longer than the certificate its CA must live for a renewal to be worth it
GAIN = timedelta(days=1)

_CANDIDATES = """
    SELECT c.federation, c.participant, c.kind, c.not_after, ca.not_after AS ca_not_after
    FROM certificates c
    JOIN certificates ca ON ca.federation = c.federation AND ca.kind = 'ca'
                        AND ca.replaced_by IS NULL
    LEFT JOIN sites s ON s.federation = c.federation AND s.name = c.participant
                     AND c.kind = 'client'
    WHERE c.kind != 'ca' AND c.replaced_by IS NULL
      AND (s.status IS NULL OR s.status != 'removed')
    ORDER BY c.not_after"""


def _renewable(db: sqlite3.Connection) -> list[sqlite3.Row]:
    """Certificates in use that a renewal can extend: their CA outlives them."""
    return [r for r in db.execute(_CANDIDATES)
            if datetime.fromisoformat(r["ca_not_after"])
            > datetime.fromisoformat(r["not_after"]) + GAIN]


def renew_due(state: StateStore, kit_store: KitStore, artifacts: ArtifactStore, issuer: Issuer,
              settings: ProvisionerSettings, now: datetime | None = None) -> datetime | None:
    """Renew every certificate within `ahead` of its end; returns when the next one is due."""
    ahead = settings.auto_renewal
    assert ahead is not None
    now = now or datetime.now(UTC)
    with state.connect() as db:
        renew_at = [(datetime.fromisoformat(r["not_after"]) - ahead, r) for r in _renewable(db)]
    for at, row in renew_at:
        if at <= now:
            _renew_one(state, row, kit_store=kit_store, artifacts=artifacts, issuer=issuer,
                       settings=settings, now=now)
    return min((at for at, _ in renew_at if at > now), default=None)


def _renew_one(state: StateStore, row: sqlite3.Row, *, kit_store: KitStore,
               artifacts: ArtifactStore, issuer: Issuer, settings: ProvisionerSettings,
               now: datetime) -> None:
    where = {"federation": row["federation"], "participant": row["participant"]}
    try:
        with state.unit_of_work() as uow:
            db = uow.write()  # then look again: a RenewCertificate may have come first
            current = tables.current_certificates(db, row["federation"], row["participant"],
                                                  row["kind"])
            if not current or current[0].not_after - settings.auto_renewal > now:
                return
            federation = tables.known_federation(db, row["federation"])
            renew(uow, federation, holder(db, federation, row["participant"]),
                  kit_store=kit_store, artifacts=artifacts, settings=settings, issuer=issuer,
                  automatic=True)
    except Rejected as exc:
        log.error("automatic renewal refused; renew by hand once its cause is fixed",
                  reason=exc.reason, detail=exc.detail, **where)
    except Exception:  # one certificate's trouble must not keep the others from renewal
        log.exception("automatic renewal failed; tried again at the next check", **where)


def auto_renewal(state: StateStore, kit_store: KitStore, issuer: Issuer,
                 settings: ProvisionerSettings,
                 artifacts: ArtifactStore) -> Callable[[threading.Event], None]:
    """A background task: renew what is due, then sleep until the next one is (at most the
    expiry check interval, so certificates issued meanwhile are looked at too)."""

    def renew_certificates_ahead_of_expiry(stop: threading.Event) -> None:
        while True:
            next_due = renew_due(state, kit_store, artifacts, issuer, settings)
            wait_s = settings.cert_expiry_check_interval_s
            if next_due is not None:
                wait_s = min(wait_s, max(1.0, (next_due - datetime.now(UTC)).total_seconds()))
            if stop.wait(wait_s):
                return

    return renew_certificates_ahead_of_expiry
