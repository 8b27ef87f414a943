"""The provisioner's handlers: CreateFederation, AddSite, RemoveSite, RenewCertificate (renewal).

NVFlare provisioning (the external side effect) runs first; the records, the
certificate expiry schedule and the events then commit together. A redelivery
after a crash in between finds the CA state and reuses it: nothing is re-minted.
"""
from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import UTC, datetime

from arcflare.artifacts import ArtifactStore
from arcflare.contracts.artifacts import ArtifactRef
from arcflare.contracts.commands import (
    AddSite,
    CreateFederation,
    RemoveSite,
    RenewCertificate,
    SiteSpec,
)
from arcflare.contracts.envelope import describe_errors
from arcflare.contracts.events import (
    AdminCertificate,
    FederationProvisioned,
    ParticipantRolled,
    SiteProvisioned,
    SiteRemoved,
)
from arcflare.flare.kits import KitStore
from arcflare.provisioner import tables
from arcflare.provisioner.expiry import record_certificate, withdraw_warnings
from arcflare.provisioner.flare_ca import FederationCA, ProvisioningFailed
from arcflare.provisioner.kit_publishing import publish_kit, withdraw_kit
from arcflare.provisioner.project import ServerEndpoint, project_admin
from arcflare.provisioner.provisioning import StoredKit, provision_federation, provision_site
from arcflare.provisioner.renewal import drop_rolled_kit, renew_certificate
from arcflare.provisioner.server_ports import free_port, ports_in_use
from arcflare.provisioner.settings import ProvisionerSettings
from arcflare.provisioner.spec_checks import differences, federation_problems, site_name_problem
from arcflare.runtime import Rejected, UnitOfWork, get_logger
from arcflare.trust.authority import Issuer

log = get_logger("arcflare.provisioner")
#: a kit of the provisioner's store -> (kit_ref as announced, its artifact)
Kits = Callable[[str], tuple[str, ArtifactRef]]


def create_federation(
    cmd: CreateFederation, *, uow: UnitOfWork, kit_store: KitStore, settings: ProvisionerSettings,
    issuer: Issuer, artifacts: ArtifactStore,
) -> None:
    existing = tables.federation(uow.db, cmd.name)
    if existing is not None:
        if changed := differences(existing.spec, cmd, existing.server_port):
            raise Rejected(
                "conflict",
                f"federation {cmd.name} already exists with a different spec "
                f"(differs in {', '.join(e['field'] for e in changed)}); "
                "use AddSite/RemoveSite to change its sites, or choose a new name",
                errors=changed,
            )
        log.info("federation already provisioned; announcing it again", federation=cmd.name)
        _announce(uow, existing, tables.sites(uow.db, cmd.name), existing=True,
                  kits=_kits(kit_store, artifacts))
        return
    if problems := federation_problems(cmd):
        raise Rejected("invalid", describe_errors(problems),
                       errors=problems)
    ca = _ca(settings, cmd.name)
    if not ca.exists() and kit_store.participants(cmd.name):
        raise Rejected(
            "conflict",
            f"the kit store holds kits for {cmd.name} but its CA state is missing; "
            "restore the provisioner's data dir, or remove those kits to start over with a new CA",
            errors=[{"field": "name", "problem": "kits exist without CA state"}],
        )
    endpoint = ServerEndpoint(
        cmd.server.host, cmd.server.port or free_port(ports_in_use(uow.db))
    )
    try:
        kits = provision_federation(cmd, endpoint, ca, kit_store, issuer)
    except ProvisioningFailed as exc:
        raise Rejected("invalid", str(exc)) from None
    federation = _save_federation(uow, cmd, endpoint, ca, kits)
    for kit in kits:
        record_certificate(uow, cmd.name, kit.name, kit.kind, kit.certificate,
                           settings.expiry_warning)
    record_certificate(uow, cmd.name, "rootCA", "ca", ca.root_certificate(),
                       settings.expiry_warning)
    log.info("federation provisioned", federation=cmd.name, endpoint=str(endpoint),
             sites=len(cmd.sites))
    _announce(uow, federation, tables.sites(uow.db, cmd.name), existing=False,
              kits=_kits(kit_store, artifacts))


def add_site(
    cmd: AddSite, *, uow: UnitOfWork, kit_store: KitStore, settings: ProvisionerSettings,
    issuer: Issuer, artifacts: ArtifactStore,
) -> None:
    federation = tables.known_federation(uow.db, cmd.federation)
    known = tables.site(uow.db, cmd.federation, cmd.site)
    if known is not None:
        _check_known_site(cmd, known)
        log.info("site already provisioned; announcing it again", federation=cmd.federation,
                 site=cmd.site)
        uow.publish(_site_event(known, _kits(kit_store, artifacts), deploy=cmd.deploy,
                                existing=True))
        return
    if problem := site_name_problem(cmd.site, federation.server_host):
        raise Rejected("invalid", f"site: {problem}",
                       errors=[{"field": "site", "problem": problem}])
    ca = _ca(settings, cmd.federation)
    if not ca.exists():
        raise Rejected(
            "conflict",
            f"federation {cmd.federation} has no CA state in {settings.ca_dir}; a site signed "
            "by a new CA could not join the running server; restore the provisioner's data dir",
            errors=[{"field": "federation", "problem": "CA state missing"}],
        )
    kit = provision_site(ca, ServerEndpoint(federation.server_host, federation.server_port),
                         federation.server_org, federation.root_valid_days, cmd.site, cmd.org,
                         kit_store, issuer)
    _save_site(uow, cmd.federation, cmd, kit)
    record_certificate(uow, cmd.federation, kit.name, kit.kind, kit.certificate,
                       settings.expiry_warning)
    log.info("site provisioned", federation=cmd.federation, site=cmd.site)
    uow.publish(_site_event(tables.site(uow.db, cmd.federation, cmd.site),
                            _kits(kit_store, artifacts), deploy=cmd.deploy))


def remove_site(cmd: RemoveSite, *, uow: UnitOfWork, kit_store: KitStore,
                artifacts: ArtifactStore) -> None:
    tables.known_federation(uow.db, cmd.federation)
    known = tables.site(uow.db, cmd.federation, cmd.site)
    if known is None:
        raise Rejected("not_found", f"site {cmd.site} is not part of federation {cmd.federation}",
                       errors=[{"field": "site", "problem": "no such site"}])
    if known.status != "removed":
        withdraw_kit(kit_store, artifacts, cmd.federation, cmd.site)  # its keys go with it
        uow.write().execute(
            "UPDATE sites SET status = 'removed', kit_ref = NULL WHERE federation = ? AND name = ?",
            (cmd.federation, cmd.site),
        )
        withdrawn = withdraw_warnings(uow, cmd.federation, cmd.site)
        log.info("site removed", federation=cmd.federation, site=cmd.site,
                 expiry_warnings_withdrawn=withdrawn)
    uow.publish(SiteRemoved(federation=cmd.federation, site=cmd.site))


COMMAND_HANDLERS = {CreateFederation: create_federation, AddSite: add_site, RemoveSite: remove_site,
                    RenewCertificate: renew_certificate}
#: the one event it listens to: a renewed participant was rolled onto its new kit
EVENT_HANDLERS = {ParticipantRolled: drop_rolled_kit}


# --- helpers ----------------------------------------------------------------------
def _ca(settings: ProvisionerSettings, federation: str) -> FederationCA:
    return FederationCA(settings.ca_dir, federation)


def _check_known_site(cmd: AddSite, known: tables.Site) -> None:
    if known.status == "removed":
        raise Rejected(
            "conflict",
            f"site {cmd.site} was removed from {cmd.federation}; NVFlare cannot revoke its "
            "certificate, so a returning site needs a new name",
            errors=[{"field": "site", "problem": "removed; choose a new name"}],
        )
    if known.org != cmd.org:
        raise Rejected(
            "conflict", f"site {cmd.site} exists in {cmd.federation} with org {known.org}",
            errors=[{"field": "org", "problem": f"was {known.org!r}, now {cmd.org!r}"}],
        )


def _save_federation(uow: UnitOfWork, cmd: CreateFederation, endpoint: ServerEndpoint,
                     ca: FederationCA, kits: list[StoredKit]) -> tables.Federation:
    by_name = {k.name: k for k in kits}
    admin = project_admin(cmd.admins)
    uow.write().execute(
        "INSERT INTO federations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (cmd.name, cmd.model_dump_json(), endpoint.host, endpoint.port, admin.org,
         cmd.cert_validity_days, ca.root_certificate().fingerprint, by_name["server"].kit_ref,
         by_name[admin.email].kit_ref, admin.email, datetime.now(UTC).isoformat()),
    )
    for site in cmd.sites:
        _save_site(uow, cmd.name, site, by_name[site.name])
    return tables.federation(uow.db, cmd.name)


def _save_site(uow: UnitOfWork, federation: str, site: SiteSpec | AddSite,
               kit: StoredKit) -> None:
    name = site.site if isinstance(site, AddSite) else site.name
    uow.write().execute(
        "INSERT INTO sites (federation, name, org, compute, kit_ref, cert_fingerprint, "
        "not_after, status, data) VALUES (?, ?, ?, ?, ?, ?, ?, 'provisioned', ?)",
        (federation, name, site.org, site.compute.model_dump_json(), kit.kit_ref,
         kit.certificate.fingerprint, kit.certificate.not_after.isoformat(),
         json.dumps([d.model_dump(mode="json") for d in site.data])),
    )


def _kits(kit_store: KitStore, artifacts: ArtifactStore) -> Kits:
    return functools.partial(publish_kit, kit_store, artifacts)


def _site_event(site: tables.Site, kits: Kits, *, deploy: bool,
                existing: bool = False) -> SiteProvisioned:
    kit_ref, kit = kits(site.kit_ref)
    return SiteProvisioned(
        federation=site.federation, site=site.name, org=site.org, kit_ref=kit_ref, kit=kit,
        cert_fingerprint=site.cert_fingerprint, not_after=site.not_after,
        compute=site.compute, deploy=deploy, existing=existing, data=site.data,
    )


def _announce(uow: UnitOfWork, federation: tables.Federation, sites: list[tables.Site],
              *, existing: bool, kits: Kits) -> None:
    spec = federation.spec
    ca = tables.newest_certificate(uow.db, federation.name, "ca")
    server = tables.newest_certificate(uow.db, federation.name, "server")
    server_kit_ref, server_kit = kits(federation.server_kit_ref)
    admin_kit_ref, admin_kit = kits(federation.admin_kit_ref)
    uow.publish(FederationProvisioned(
        federation=federation.name, server_endpoint=federation.endpoint,
        server_kit_ref=server_kit_ref, server_kit=server_kit, admin_kit_ref=admin_kit_ref,
        admin_kit=admin_kit, admin_name=federation.admin_name, sites=[s.name for s in sites],
        server_compute=spec.server.compute, admins=spec.admins,
        ca_fingerprint=federation.ca_fingerprint, auto_deploy=spec.auto_deploy,
        existing=existing, ca_not_after=ca.not_after if ca else None,
        server_cert_fingerprint=server.fingerprint if server else None,
        server_not_after=server.not_after if server else None,
        admin_certificates=[
            AdminCertificate(participant=c.participant, fingerprint=c.fingerprint,
                             not_after=c.not_after)
            for c in tables.current_certificates(uow.db, federation.name, kind="admin")],
    ))
    for site in sites:
        uow.publish(_site_event(site, kits, deploy=spec.auto_deploy, existing=existing))
