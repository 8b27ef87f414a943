"""Provision a federation, or one more site, and put the kits in the kit store.

NVFlare builds into a scratch `prod_NN` folder inside the CA workspace; each kit
is finished (local/resources.json) and moved into the kit store, then the scratch
folder is dropped. Kits are stored under the names the deployer runs them by:
`server` for the server, the site name for a site, the email for an admin.
"""
from __future__ import annotations

from dataclasses import dataclass

from arcflare.contracts.commands import CreateFederation
from arcflare.flare.kits import KitStore
from arcflare.provisioner.certificates import CertificateFacts
from arcflare.provisioner.flare_ca import BuiltKit, FederationCA
from arcflare.provisioner.kit_resources import write_client_resources, write_server_resources
from arcflare.provisioner.project import ServerEndpoint, federation_project, one_site_project
from arcflare.trust.authority import Issuer
from arcflare.trust.kits import kit_identity
from arcflare.trust.principals import Principal

SERVER = "server"


def kit_principal(federation: str, kit: BuiltKit) -> Principal | None:
    """Whose ArcFlare identity a kit carries: the server kit the federation's bridge (it runs
    in the server), a site kit that site's agent; admin kits none (persons have their own)."""
    if kit.kind == "server":
        return Principal.bridge(federation)
    if kit.kind == "client":
        return Principal.site_agent(federation, kit.participant)
    return None


def add_kit_identity(issuer: Issuer, federation: str, kit: BuiltKit, validity_days: int) -> None:
    principal = kit_principal(federation, kit)
    if principal is not None:
        issuer.issue(principal, out_dir=kit_identity(kit.folder).directory,
                     validity_days=validity_days)


@dataclass(frozen=True)
class StoredKit:
    name: str  # "server", a site name or an admin email
    kind: str  # server | client | admin
    kit_ref: str
    certificate: CertificateFacts


def kit_name(kit: BuiltKit) -> str:
    return SERVER if kit.kind == "server" else kit.participant


@dataclass(frozen=True)
class KitFinish:
    """What a freshly built kit gets before it is stored: the ArcFlare identity of whoever
    runs it (issued for validity_days) and its local/resources.json."""

    issuer: Issuer
    validity_days: int
    heart_beat_timeout_s: int

    def apply(self, federation: str, kit: BuiltKit) -> None:
        add_kit_identity(self.issuer, federation, kit, self.validity_days)
        if kit.kind == "server":
            write_server_resources(kit.folder, self.heart_beat_timeout_s)
        elif kit.kind == "client":
            write_client_resources(kit.folder)


def _store(ca: FederationCA, kit: BuiltKit, kit_store: KitStore, finish: KitFinish) -> StoredKit:
    finish.apply(ca.federation, kit)
    ref = kit_store.put(ca.federation, kit_name(kit), kit.folder)
    return StoredKit(kit_name(kit), kit.kind, ref, kit.certificate)


def provision_federation(
    spec: CreateFederation, endpoint: ServerEndpoint, ca: FederationCA, kit_store: KitStore,
    issuer: Issuer,
) -> list[StoredKit]:
    """Every kit of the federation (server, sites, admins), reusing the CA if it exists."""
    finish = KitFinish(issuer, spec.cert_validity_days, spec.heart_beat_timeout_s)
    built, kits = ca.provision(federation_project(spec, endpoint))
    try:
        return [_store(ca, kit, kit_store, finish) for kit in kits]
    finally:
        ca.discard(built)


def provision_site(
    ca: FederationCA, endpoint: ServerEndpoint, server_org: str, root_valid_days: int,
    site: str, org: str, kit_store: KitStore, issuer: Issuer,
) -> StoredKit:
    """One new client kit signed by the existing CA; no other kit is touched."""
    if not ca.exists():
        raise FileNotFoundError(f"no CA state for federation {ca.federation}")
    built, (client,) = ca.provision_sites(
        one_site_project(ca.federation, endpoint, server_org, site, org, root_valid_days)
    )
    try:
        write_client_resources(client.folder)
        add_kit_identity(issuer, ca.federation, client, root_valid_days)
        return StoredKit(site, "client", kit_store.put(ca.federation, site, client.folder),
                         client.certificate)
    finally:
        ca.discard(built)  # the scratch build; the stored server kit is never touched


def renew_kit(ca: FederationCA, project: dict, participant: str, kind: str,
              kit_store: KitStore, finish: KitFinish) -> StoredKit:
    """A new version of one participant's kit: a new key and certificate from the existing
    CA (NVFlare's CertBuilder), a new ArcFlare identity where the kit carries one, put in
    place of the current kit, which is kept as the previous version. `participant` is the
    name in `project` (the server's host name for the server)."""
    if not ca.exists():
        raise FileNotFoundError(f"no CA state for federation {ca.federation}")
    built, kit = ca.renew(project, participant, kind)
    try:
        finish.apply(ca.federation, kit)
        ref = kit_store.replace(ca.federation, kit_name(kit), kit.folder)
        return StoredKit(kit_name(kit), kind, ref, kit.certificate)
    finally:
        ca.discard(built)
