"""RenewCertificate: one participant's new key and certificate, in a new version of its kit.

The new kit is put in place first (the current one kept as the previous version), then
the records, the new expiry warning and CertificateRenewed commit together. A crash in
between leaves a kit in place that the records do not know: `settle` (at start-up, and
before every renewal) puts the previous version back, and the redelivered command renews
afresh — one consistent kit version either way. The previous version is deleted once the
deployer reports the participant rolled onto the new one (ParticipantRolled); an admin's
at once, since nothing runs it (the job-controller simply logs in with the new kit).
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

from arcflare.artifacts import ArtifactStore
from arcflare.contracts.commands import AdminSpec, IfJobRunning, RenewCertificate
from arcflare.contracts.events import CertificateRenewed, ParticipantRolled
from arcflare.flare.kits import KitNotFound, KitStore
from arcflare.provisioner import tables
from arcflare.provisioner.certificates import CertificateFacts, read_facts
from arcflare.provisioner.expiry import record_certificate, withdraw_warning
from arcflare.provisioner.flare_ca import CERT_FILE, FederationCA, ProvisioningFailed
from arcflare.provisioner.kit_publishing import (
    drop_previous_kit,
    publish_kit,
    undo_unrecorded_kit,
)
from arcflare.provisioner.project import ServerEndpoint, renewal_project
from arcflare.provisioner.provisioning import SERVER, KitFinish, StoredKit, renew_kit
from arcflare.provisioner.settings import ProvisionerSettings
from arcflare.runtime import Rejected, StateStore, UnitOfWork, get_logger
from arcflare.trust.authority import Issuer

log = get_logger("arcflare.provisioner.renewal")
#: how many of a federation's sites a rejection names
NAMED_SITES = 10


@dataclass(frozen=True)
class Holder:
    """Whose certificate is renewed: its kit's name ("server", a site, an admin's email),
    its kind, its name in NVFlare's project, and what that project needs to know of it."""

    name: str
    kind: str  # server | client | admin
    flare_name: str
    site: tuple[str, str] | None = None  # (name, org)
    admin: AdminSpec | None = None


def renew_certificate(cmd: RenewCertificate, *, uow: UnitOfWork, kit_store: KitStore,
                      artifacts: ArtifactStore, settings: ProvisionerSettings,
                      issuer: Issuer) -> None:
    db = uow.write()  # one renewal at a time, also against the automatic ones
    federation = tables.known_federation(db, cmd.federation)
    renew(uow, federation, holder(db, federation, cmd.participant), kit_store=kit_store,
          artifacts=artifacts, settings=settings, issuer=issuer,
          if_job_running=cmd.if_job_running)


def holder(db: sqlite3.Connection, federation: tables.Federation, participant: str) -> Holder:
    """The participant named, or a rejection saying who could have been named."""
    if participant == SERVER:
        return Holder(SERVER, "server", federation.server_host)
    site = tables.site(db, federation.name, participant)
    if site is not None and site.status == "removed":
        raise Rejected(
            "conflict", f"site {participant} was removed from {federation.name}; a removed "
            "site has no kit to renew (add it again under a new name)",
            errors=[{"field": "participant", "problem": "removed site"}])
    if site is not None:
        return Holder(site.name, "client", site.name, site=(site.name, site.org))
    wanted = participant.lower()
    admin = next((a for a in federation.spec.admins if a.email.lower() == wanted), None)
    if admin is not None:
        return Holder(admin.email, "admin", admin.email, admin=admin)
    sites = [s.name for s in tables.sites(db, federation.name)]
    named = ", ".join(sites[:NAMED_SITES]) + (", …" if len(sites) > NAMED_SITES else "")
    raise Rejected(
        "not_found", f"{participant} is not a participant of {federation.name}: name a site "
        f"({named or 'none'}), an admin's email, or server (the CA itself is not renewed in "
        "place: docs/certificates.md)",
        errors=[{"field": "participant", "problem": "no such site, admin or server"}])


def renew(uow: UnitOfWork, federation: tables.Federation, who: Holder, *, kit_store: KitStore,
          artifacts: ArtifactStore, settings: ProvisionerSettings, issuer: Issuer,
          if_job_running: IfJobRunning = "wait", automatic: bool = False) -> CertificateRenewed:
    db = uow.write()
    ca, root = _signing_ca(settings, federation.name)
    (old,) = tables.current_certificates(db, federation.name, who.name, who.kind)
    settle(db, kit_store, artifacts, federation.name, who.name)
    finish = KitFinish(issuer, federation.root_valid_days, federation.spec.heart_beat_timeout_s)
    project = renewal_project(federation.name,
                              ServerEndpoint(federation.server_host, federation.server_port),
                              federation.server_org, federation.root_valid_days,
                              site=who.site, admin=who.admin)
    try:
        kit = renew_kit(ca, project, who.flare_name, who.kind, kit_store, finish)
    except ProvisioningFailed as exc:
        raise Rejected("invalid", str(exc)) from None
    announced_ref, artifact = publish_kit(kit_store, artifacts, kit.kit_ref)
    _record(uow, federation, who, kit, old.fingerprint, settings)
    if who.kind == "admin":
        uow.after_commit(lambda: drop_previous_kit(kit_store, artifacts, federation.name,
                                                   who.name))
    new = kit.certificate
    event = CertificateRenewed(
        federation=federation.name, participant=who.name, kind=who.kind,
        old_fingerprint=old.fingerprint, new_fingerprint=new.fingerprint,
        not_after=new.not_after, kit_ref=announced_ref, kit=artifact,
        if_job_running=if_job_running, automatic=automatic,
        limited_by_ca=new.not_after >= root.not_after)
    uow.publish(event)
    log.info("certificate renewed", federation=federation.name, participant=who.name,
             kind=who.kind, not_after=new.not_after.isoformat(), automatic=automatic)
    return event


def _signing_ca(settings: ProvisionerSettings,
                federation: str) -> tuple[FederationCA, CertificateFacts]:
    """The federation's CA and its certificate, or why it can sign nothing."""
    ca = FederationCA(settings.ca_dir, federation)
    if not ca.exists():
        raise Rejected(
            "conflict", f"federation {federation} has no CA state in {settings.ca_dir}; a "
            "certificate from a new CA would not be trusted by the others: restore the "
            "provisioner's data dir", errors=[{"field": "federation", "problem": "CA state missing"}])
    root = ca.root_certificate()
    if root.not_after <= datetime.now(UTC):
        raise Rejected(
            "conflict", f"the CA of {federation} expired on {root.not_after:%Y-%m-%d}: it can "
            "sign nothing more; rotate the CA (docs/certificates.md)",
            errors=[{"field": "federation", "problem": "CA expired"}])
    return ca, root


def _record(uow: UnitOfWork, federation: tables.Federation, who: Holder, kit: StoredKit,
            old_fingerprint: str, settings: ProvisionerSettings) -> None:
    """The new certificate replaces the old on record, with its own expiry warning (the old
    one's is withdrawn), and the records name the new kit."""
    db, new = uow.write(), kit.certificate
    db.execute("UPDATE certificates SET replaced_by = ? WHERE federation = ? AND fingerprint = ?",
               (new.fingerprint, federation.name, old_fingerprint))
    withdraw_warning(uow, federation.name, old_fingerprint)
    record_certificate(uow, federation.name, who.name, who.kind, new, settings.expiry_warning)
    _point_at(db, federation, who, kit.kit_ref, new.fingerprint, new.not_after)


def _point_at(db: sqlite3.Connection, federation: tables.Federation, who: Holder, kit_ref: str,
              fingerprint: str, not_after: datetime) -> None:
    """The records name the new kit (its ref changes with the Azure ML store's versions)."""
    if who.kind == "client":
        db.execute("UPDATE sites SET kit_ref = ?, cert_fingerprint = ?, not_after = ? "
                   "WHERE federation = ? AND name = ?",
                   (kit_ref, fingerprint, not_after.isoformat(), federation.name, who.name))
    elif who.kind == "server":
        db.execute("UPDATE federations SET server_kit_ref = ? WHERE name = ?",
                   (kit_ref, federation.name))
    elif who.name == federation.admin_name:
        db.execute("UPDATE federations SET admin_kit_ref = ? WHERE name = ?",
                   (kit_ref, federation.name))


def settle(db: sqlite3.Connection, kit_store: KitStore, artifacts: ArtifactStore,
           federation: str, name: str) -> None:
    """Undo a renewal that put its kit in place but was never recorded (a crash between):
    the kit in place must be the one whose certificate the records call current."""
    if name not in kit_store.unsettled(federation):
        return
    current = tables.current_certificates(db, federation, name)
    if not current:
        return
    expected = current[0]
    if _kit_fingerprint(kit_store, federation, name, expected.kind) == expected.fingerprint:
        kit_store.discard_incoming(federation, name)
        return
    restored = undo_unrecorded_kit(kit_store, artifacts, federation, name)
    in_place = _kit_fingerprint(kit_store, federation, name, expected.kind)
    if in_place != expected.fingerprint:
        log.error("the kit in place is not the one on record, and no earlier version matches",
                  federation=federation, participant=name, restored=restored)
        return
    log.warning("a renewal that was never recorded was undone: the previous kit is back",
                federation=federation, participant=name)


def settle_all(state: StateStore, kit_store: KitStore, artifacts: ArtifactStore) -> None:
    """At start-up: every participant's kit is the version on record."""
    with state.connect() as db:
        for federation in [r["name"] for r in db.execute("SELECT name FROM federations")]:
            for name in kit_store.unsettled(federation):
                settle(db, kit_store, artifacts, federation, name)


def _kit_fingerprint(kit_store: KitStore, federation: str, name: str, kind: str) -> str | None:
    ref = kit_store.ref(federation, name)
    try:
        folder = kit_store.resolve(ref) if ref else None
    except KitNotFound:
        return None
    cert = folder / "startup" / CERT_FILE[kind] if folder else None
    return read_facts(cert).fingerprint if cert and cert.is_file() else None


def drop_rolled_kit(evt: ParticipantRolled, *, uow: UnitOfWork, kit_store: KitStore,
                    artifacts: ArtifactStore) -> None:
    """The participant runs on its renewed kit (or will at its next start): the previous
    version, and its keys, can go — unless a later renewal has replaced this kit already
    (its previous version is then the kit this roll put in use)."""
    current = tables.current_certificates(uow.db, evt.federation, evt.participant)
    if current and current[0].fingerprint == evt.fingerprint:
        drop_previous_kit(kit_store, artifacts, evt.federation, evt.participant)
        log.info("previous kit deleted: the renewed one is in use", federation=evt.federation,
                 participant=evt.participant, restarted=evt.restarted)
