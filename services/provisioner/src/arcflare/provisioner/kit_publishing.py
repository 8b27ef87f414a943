"""Kits leave the provisioner only through the artifact store.

The provisioner keeps its kits in its own kit store (beside the CA state); what it
announces is each kit packed into the artifact store's kits area, by reference. Packing
is deterministic, so announcing a kit again (a repeated CreateFederation) names the same
blob. `kit_ref` in the events is that reference's locator — or, with the azureml kit
store, the Azure ML data asset the deployer's jobs mount — never a path of this machine.
"""
from __future__ import annotations

from pathlib import Path

from arcflare.artifacts import ArtifactStore
from arcflare.artifacts.packing import pack_folder_bytes
from arcflare.contracts.artifacts import STARTUP_KIT, ArtifactRef
from arcflare.flare.kit_artifacts import put_kit
from arcflare.flare.kits import AZUREML_SCHEME, KitStore


def publish_kit(kit_store: KitStore, artifacts: ArtifactStore,
                kit_ref: str) -> tuple[str, ArtifactRef]:
    """(kit_ref as announced, the kit's artifact) for a kit of the provisioner's store."""
    artifact = put_kit(artifacts, kit_store.resolve(kit_ref))
    return (kit_ref if kit_ref.startswith(AZUREML_SCHEME) else artifact.locator), artifact


def withdraw_kit(kit_store: KitStore, artifacts: ArtifactStore, federation: str,
                 participant: str) -> None:
    """Delete a participant's kit here and its blob in the artifact store (its keys with it),
    and so a renewed kit's previous version."""
    kit_ref = kit_store.ref(federation, participant)
    if kit_ref is not None:
        _delete_blob(artifacts, kit_store.resolve(kit_ref))
    drop_previous_kit(kit_store, artifacts, federation, participant)
    kit_store.remove(federation, participant)


def drop_previous_kit(kit_store: KitStore, artifacts: ArtifactStore, federation: str,
                      participant: str) -> None:
    """Delete the version a renewal replaced, here and in the artifact store."""
    previous = kit_store.previous(federation, participant)
    if previous is not None:
        _delete_blob(artifacts, previous)
    kit_store.drop_previous(federation, participant)


def undo_unrecorded_kit(kit_store: KitStore, artifacts: ArtifactStore, federation: str,
                        participant: str) -> bool:
    """Put the previous version back in place of a renewed kit nothing recorded (a crash
    before the commit), deleting that kit's blob if it got as far as the store."""
    if kit_store.previous(federation, participant) is None:
        return kit_store.restore_previous(federation, participant)
    kit_ref = kit_store.ref(federation, participant)
    if kit_ref is not None:
        _delete_blob(artifacts, kit_store.resolve(kit_ref))
    return kit_store.restore_previous(federation, participant)


def _delete_blob(artifacts: ArtifactStore, kit: Path) -> None:
    artifacts.delete(artifacts.reference(pack_folder_bytes(kit), STARTUP_KIT, area="kits"))
