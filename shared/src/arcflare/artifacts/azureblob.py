"""The azureblob artifact store: a container per area, blobs named by their sha256.

Containers `<prefix>-packages`, `<prefix>-results` and `<prefix>-kits` (created on first
write), so access to kits — private keys — can be granted apart: the deployer and the
job-controller read them, the provisioner writes them, nobody else needs them. A blob
appears only when its upload is committed (Put Blob and Put Block List are atomic), so
a reader never sees half of one. Authentication: DefaultAzureCredential against the
account URL, or a connection string (Azurite, the emulator, uses one).
"""
from __future__ import annotations

import queue
import threading
from typing import Any

from arcflare.artifacts.port import (
    ArtifactMissing,
    ArtifactStore,
    Source,
    VerifyingSink,
    verify_size,
)
from arcflare.contracts.artifacts import ArtifactRef
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, ContentSettings


class AzureBlobArtifactStore(ArtifactStore):
    name = "azureblob"

    def __init__(self, service: BlobServiceClient, *, container_prefix: str = "arcflare",
                 max_concurrency: int = 4) -> None:
        self.service = service
        self.container_prefix = container_prefix
        self.max_concurrency = max_concurrency

    @classmethod
    def from_settings(cls, settings: Any) -> AzureBlobArtifactStore:
        secret = settings.artifact_blob_connection_string
        if secret is not None:
            service = BlobServiceClient.from_connection_string(secret.get_secret_value())
        elif settings.artifact_blob_account_url:
            from azure.identity import DefaultAzureCredential

            service = BlobServiceClient(settings.artifact_blob_account_url,
                                        credential=DefaultAzureCredential())
        else:
            raise ValueError("artifact_store=azureblob needs ARCFLARE_ARTIFACT_BLOB_ACCOUNT_URL "
                             "(https://<account>.blob.core.windows.net, DefaultAzureCredential) "
                             "or ARCFLARE_ARTIFACT_BLOB_CONNECTION_STRING")
        return cls(service, container_prefix=settings.artifact_blob_container_prefix)

    def container(self, area: str) -> str:
        return f"{self.container_prefix}-{area}"

    def _blob(self, area: str, sha256: str):
        return self.service.get_blob_client(self.container(area), sha256)

    def _holds(self, area: str, sha256: str, size: int) -> bool:
        try:
            return self._blob(area, sha256).get_blob_properties().size == size
        except ResourceNotFoundError:
            return False

    def _write(self, area: str, sha256: str, source: Source, size: int,
               media_type: str) -> None:
        try:
            self._upload(area, sha256, source, size, media_type)
        except ResourceNotFoundError:  # the area's container does not exist yet
            try:
                self.service.create_container(self.container(area))
            except ResourceExistsError:
                pass  # another writer made it meanwhile
            self._upload(area, sha256, source, size, media_type)

    def _upload(self, area: str, sha256: str, source: Source, size: int,
                media_type: str) -> None:
        # overwrite: whoever writes this name writes these very bytes (or repairs a blob
        # of the wrong size), so a race between two writers is harmless
        settings = ContentSettings(content_type=media_type)
        blob = self._blob(area, sha256)
        if isinstance(source, bytes):
            blob.upload_blob(source, length=size, overwrite=True, content_settings=settings,
                             max_concurrency=self.max_concurrency)
            return
        with open(source, "rb") as data:
            blob.upload_blob(data, length=size, overwrite=True, content_settings=settings,
                             max_concurrency=self.max_concurrency)

    def _delete(self, area: str, sha256: str) -> None:
        try:
            self._blob(area, sha256).delete_blob()
        except ResourceNotFoundError:
            pass

    def _read_into(self, ref: ArtifactRef, sink: VerifyingSink) -> None:
        try:
            download = self._blob(ref.area, ref.sha256).download_blob()
        except ResourceNotFoundError:
            raise ArtifactMissing(ref, f"no such blob in container "
                                       f"{self.container(ref.area)}") from None
        # the first response says the blob's length: one of another length is refused before
        # more than that first part (the SDK's single get, 32 MiB at most) has moved
        verify_size(ref, download.size)
        # the SDK keeps downloading while the chunks before are hashed and written on another
        # thread (both let go of the GIL): verifying costs next to nothing over a download
        handoff = _Handoff(sink)
        try:
            download.readinto(handoff)
        finally:
            handoff.close()
        if sink.error is not None:
            raise sink.error


class _Handoff:
    """A write-only stream for the SDK's readinto that feeds the sink, in order, on a thread
    of its own; the first error the sink raises is kept there and stops the download."""

    def __init__(self, sink: VerifyingSink) -> None:
        self.sink = sink
        self._landed: queue.Queue = queue.Queue(maxsize=8)
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def write(self, chunk: bytes) -> int:
        if self.sink.error is not None:
            raise self.sink.error
        self._landed.put(chunk)
        return len(chunk)

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self._landed.put(None)
        self._thread.join()

    def _drain(self) -> None:
        while (chunk := self._landed.get()) is not None:
            if self.sink.error is not None:
                continue  # dropped: the download stops at its next write
            try:
                self.sink.write(chunk)
            except BaseException as exc:  # noqa: BLE001 - raised in the downloading thread
                self.sink.error = exc
