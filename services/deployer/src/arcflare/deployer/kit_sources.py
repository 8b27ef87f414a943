"""Which kit a participant runs: only what the provisioner announced, only from the store.

The events name a kit by its artifact reference (and, for Azure ML, by the data asset the
provisioner uploaded). The deployer refuses, before anything is recorded, a kit that is
not in its own artifact store's kits area with the kit media type, or an Azure ML asset
the provisioner does not name for that participant; a path is never taken from a
message, whoever signed it. Before a deploy the kit is fetched, verified and unpacked
into the deployer's own kit cache, and the compute runs that folder.
"""
from __future__ import annotations

from dataclasses import replace

from arcflare.artifacts import ArtifactError, ArtifactStore
from arcflare.artifacts.unpacking import InvalidArchive
from arcflare.contracts.artifacts import ArtifactRef
from arcflare.deployer.compute import DeploymentError, Target
from arcflare.flare import kits
from arcflare.flare.kit_artifacts import KitCache, check_kit


def foreign_kit(kit_ref: str, kit: ArtifactRef | None, *, store: ArtifactStore,
                federation: str, participant: str) -> str | None:
    """Why an announced kit is not one this deployer runs, or None."""
    if kit is not None:
        try:
            check_kit(store, kit)
        except ArtifactError as exc:
            return f"kit of {participant}: {exc}"
    if kit_ref.startswith(kits.AZUREML_SCHEME):
        expected = kits.asset_name(federation, participant)
        if kit_ref[len(kits.AZUREML_SCHEME):].rsplit(":", 1)[0] != expected:
            return (f"kit_ref {kit_ref!r} is not the Azure ML asset the provisioner names for "
                    f"{participant} of {federation} ({expected})")
        return None
    if kit is None:
        return (f"kit_ref {kit_ref!r} of {participant} is no reference into the artifact store; "
                "kits run only from the store, where the provisioner puts them")
    if kit_ref != kit.locator:
        return f"kit_ref {kit_ref!r} of {participant} is not its kit's locator {kit.locator}"
    return None


def runnable(target: Target, cache: KitCache) -> Target:
    """The target with kit_ref naming its kit in the deployer's own cache (fetched and
    verified on first use); an Azure ML job on an Azure ML asset mounts the asset instead."""
    on_asset = target.kit_ref.startswith(kits.AZUREML_SCHEME)
    if target.kit is None or (on_asset and target.compute.backend == "azureml"):
        return target
    try:
        folder = cache.folder(target.kit, target.name)
    except ArtifactError as exc:
        raise DeploymentError(f"kit {exc.locator}: {exc.problem}; re-provision the "
                              "participant") from None
    except InvalidArchive as exc:  # says "kit <locator>: ..." already
        raise DeploymentError(f"{exc}; re-provision the participant") from None
    return replace(target, kit_ref=kits.file_ref(folder))
