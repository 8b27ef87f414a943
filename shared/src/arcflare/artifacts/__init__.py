"""The artifact store: packages, results and kits by content-addressed reference.

    store = open_artifact_store(settings)
    ref = store.put(path_or_bytes, media_type, area="packages")   # ArtifactRef
    store.fetch(ref, dest, area="packages", max_bytes=cap)        # verified, or ArtifactError
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from arcflare.artifacts.port import (
    ArtifactCorrupt,
    ArtifactError,
    ArtifactMissing,
    ArtifactRefused,
    ArtifactStore,
    ArtifactTooLarge,
)

if TYPE_CHECKING:
    from arcflare.runtime.settings import Settings


def open_artifact_store(settings: Settings) -> ArtifactStore:
    """The store the settings name: a folder under the data dir by default."""
    if settings.artifact_store == "azureblob":
        from arcflare.artifacts.azureblob import AzureBlobArtifactStore

        return AzureBlobArtifactStore.from_settings(settings)
    from arcflare.artifacts.folder import FolderArtifactStore

    return FolderArtifactStore(settings.artifact_folder or settings.data_dir / "artifacts")


__all__ = ["ArtifactCorrupt", "ArtifactError", "ArtifactMissing", "ArtifactRefused",
           "ArtifactStore", "ArtifactTooLarge", "open_artifact_store"]
