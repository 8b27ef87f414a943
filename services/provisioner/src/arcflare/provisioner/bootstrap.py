"""Wires the provisioner: its state DB, the kit store, the command and event consumers, the
expiry watch and (opt-in) automatic renewal."""
from __future__ import annotations

from typing import Any

from arcflare.artifacts import open_artifact_store
from arcflare.bus import connect
from arcflare.flare.kits import FolderKitStore, KitStore
from arcflare.provisioner import tables
from arcflare.provisioner.auto_renewal import auto_renewal
from arcflare.provisioner.expiry import expiry_watch
from arcflare.provisioner.handlers import COMMAND_HANDLERS, EVENT_HANDLERS
from arcflare.provisioner.renewal import settle_all
from arcflare.provisioner.settings import ProvisionerSettings
from arcflare.runtime import Consumer, Service, StateStore
from arcflare.runtime.authorization import enforce_policy
from arcflare.runtime.identity import SETUP_HINT, MissingIdentity
from arcflare.trust.authority import Issuer
from arcflare.trust.errors import IdentityError
from arcflare.trust.local import issuer_identity_paths


def kit_store_for(s: ProvisionerSettings) -> KitStore:
    local = FolderKitStore(s.kits_dir)
    if s.kit_store == "folder":
        return local
    from arcflare.provisioner.adapters.aml_kit_store import AzureMLKitStore

    missing = [n for n in ("aml_subscription_id", "aml_resource_group", "aml_workspace")
               if not getattr(s, n)]
    if missing:
        raise ValueError(f"kit_store=azureml needs ARCFLARE_{', ARCFLARE_'.join(missing).upper()}")
    return AzureMLKitStore.from_settings(local, s.aml_subscription_id, s.aml_resource_group,
                                         s.aml_workspace)


def load_issuer(s: ProvisionerSettings) -> Issuer:
    folder = s.issuer_dir or issuer_identity_paths(s.data_dir).directory
    try:
        return Issuer.load(folder)
    except (IdentityError, OSError) as exc:
        raise MissingIdentity(
            f"the provisioner's issuer (the intermediate that signs site agents' and bridges' "
            f"identities into kits) is not usable at {folder}: {exc}; {SETUP_HINT} — the "
            "issuer comes from `arcflare identity issue issuer --out DIR` "
            "(ARCFLARE_ISSUER_DIR)") from None


def bootstrap(settings: ProvisionerSettings | None = None, **overrides: Any) -> Service:
    s = settings or ProvisionerSettings()
    given_bus = overrides.pop("bus", None)
    bus = given_bus or connect(s)
    state = overrides.pop("state", None) or StateStore(
        s.data_dir / "provisioner.db", migrations=tables.MIGRATIONS
    )
    kit_store = overrides.pop("kit_store", None) or kit_store_for(s)
    issuer = overrides.pop("issuer", None) or load_issuer(s)
    artifacts = overrides.pop("artifacts", None) or open_artifact_store(s)
    settle_all(state, kit_store, artifacts)  # a renewal cut short by a crash: its kit back
    background = [expiry_watch(state, s.expiry_warning, s.cert_expiry_check_interval_s)]
    if s.auto_renewal is not None:
        background.append(auto_renewal(state, kit_store, issuer, s, artifacts))
    return Service(
        name="provisioner",
        settings=s,
        bus=bus,
        owns_bus=given_bus is None,
        state=state,
        consumers=[Consumer("provisioner", handlers=COMMAND_HANDLERS, sessions=True),
                   Consumer("events", subscription="provisioner", handlers=EVENT_HANDLERS)],
        dependencies={"kit_store": kit_store, "issuer": issuer, "artifacts": artifacts,
                      **overrides},
        background=background,
        # NVFlare-style roles: only the federation's project_admin provisions
        authorize=enforce_policy(tables.access, source_of_truth=True),
    )
