"""Kit store on Azure ML: each kit also becomes a `uri_folder` data asset (docs/architecture.md §7).

The kit is kept in the local folder store as well (the provisioner's own copy,
next to its CA state) and uploaded from there; the kit ref handed out is
`azureml:<asset name>:<version>`, which an Azure ML command job takes as an input.
The version is derived from the kit's certificate, so uploading the same kit
again names the same version, and a re-issued kit a new one.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from arcflare.flare.kits import (
    AZUREML_ASSET_PREFIX,
    AZUREML_SCHEME,
    FolderKitStore,
    KitNotFound,
    KitStore,
    asset_name,
)
from arcflare.observability.tracing import traced
from azure.ai.ml.constants import AssetTypes
from azure.ai.ml.entities import Data
from azure.core.exceptions import ResourceNotFoundError

ASSET_PREFIX = AZUREML_ASSET_PREFIX


def kit_version(kit: Path) -> str:
    """A short digest of the kit's certificates: same kit, same version."""
    digest = hashlib.sha256()
    for cert in sorted((kit / "startup").glob("*.crt")):
        digest.update(cert.read_bytes())
    return digest.hexdigest()[:16]


def kit_asset(federation: str, participant: str, kit: Path) -> Data:
    return Data(
        name=asset_name(federation, participant),
        version=kit_version(kit),
        path=str(kit),
        type=AssetTypes.URI_FOLDER,
        description=f"NVFlare startup kit of {participant} in federation {federation}",
        tags={"arcflare": "kit", "federation": federation, "participant": participant},
    )


class AzureMLKitStore(KitStore):
    def __init__(self, local: FolderKitStore, ml_client: Any) -> None:
        self.local = local
        self.ml_client = ml_client

    @classmethod
    def from_settings(cls, local: FolderKitStore, subscription_id: str, resource_group: str,
                      workspace: str) -> AzureMLKitStore:
        from azure.ai.ml import MLClient
        from azure.identity import DefaultAzureCredential

        return cls(local, MLClient(DefaultAzureCredential(), subscription_id, resource_group,
                                   workspace))

    @traced("kit_store put", attributes={"arcflare.kit_store": "azureml"})
    def put(self, federation: str, participant: str, built: Path) -> str:
        local = self.local.resolve(self.local.put(federation, participant, built))
        created = self.ml_client.data.create_or_update(kit_asset(federation, participant, local))
        return f"{AZUREML_SCHEME}{created.name}:{created.version}"

    def ref(self, federation: str, participant: str) -> str | None:
        local = self.local.ref(federation, participant)
        if local is None:
            return None
        version = kit_version(self.local.resolve(local))
        return f"{AZUREML_SCHEME}{asset_name(federation, participant)}:{version}"

    @traced("kit_store remove", attributes={"arcflare.kit_store": "azureml"})
    def remove(self, federation: str, participant: str) -> None:
        local = self.local.ref(federation, participant)
        self._archive(federation, participant, self.local.resolve(local) if local else None)
        self._archive(federation, participant, self.local.previous(federation, participant))
        self.local.remove(federation, participant)

    def participants(self, federation: str) -> list[str]:
        return self.local.participants(federation)

    @traced("kit_store replace", attributes={"arcflare.kit_store": "azureml"})
    def replace(self, federation: str, participant: str, built: Path) -> str:
        local = self.local.resolve(self.local.replace(federation, participant, built))
        created = self.ml_client.data.create_or_update(kit_asset(federation, participant, local))
        return f"{AZUREML_SCHEME}{created.name}:{created.version}"

    def previous(self, federation: str, participant: str) -> Path | None:
        return self.local.previous(federation, participant)

    def drop_previous(self, federation: str, participant: str) -> None:
        self._archive(federation, participant, self.local.previous(federation, participant))
        self.local.drop_previous(federation, participant)

    def restore_previous(self, federation: str, participant: str) -> bool:
        if self.local.previous(federation, participant) is not None:
            current = self.local.ref(federation, participant)
            # the version undone was never announced: its asset goes with it
            self._archive(federation, participant,
                          self.local.resolve(current) if current else None)
        return self.local.restore_previous(federation, participant)

    def discard_incoming(self, federation: str, participant: str) -> None:
        self.local.discard_incoming(federation, participant)  # never uploaded

    def unsettled(self, federation: str) -> list[str]:
        return self.local.unsettled(federation)

    def _archive(self, federation: str, participant: str, kit: Path | None) -> None:
        if kit is None:
            return
        try:
            self.ml_client.data.archive(name=asset_name(federation, participant),
                                        version=kit_version(kit))
        except ResourceNotFoundError:
            pass  # a renewal cut short before its upload: nothing to archive

    @traced("kit_store resolve", attributes={"arcflare.kit_store": "azureml"})
    def resolve(self, kit_ref: str) -> Path:
        """An `azureml:` ref resolves to the provisioner's local copy of that kit version."""
        if not kit_ref.startswith(AZUREML_SCHEME):
            return self.local.resolve(kit_ref)
        name, _, version = kit_ref[len(AZUREML_SCHEME):].rpartition(":")
        for kit in self.local.root.glob("*/*"):
            if asset_name(kit.parent.name, kit.name) == name and kit_version(kit) == version:
                return kit
        raise KitNotFound(f"no local copy of {kit_ref}")
