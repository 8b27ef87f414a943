"""The azureblob artifact store: a container per area, blobs named by their sha256.

Containers `<prefix>-packages`, `<prefix>-results` and `<prefix>-kits` (created on first
write), so access to kits — private keys — can be granted apart: the deployer and the
job-controller read them, the provisioner writes them, nobody else needs them. A blob
appears only when its upload is committed (Put Blob and Put Block List are atomic), so
a reader never sees half of one. A fetch is one streamed Get Blob, counted and hashed as
it arrives, resumed where it broke if the connection drops. Authentication:
DefaultAzureCredential against the account URL, or a connection string (Azurite, the
emulator, uses one).
"""
from __future__ import annotations

import os
from typing import Any

from arcflare.artifacts.port import (
    ArtifactError,
    ArtifactMissing,
    ArtifactStore,
    Source,
    VerifyingSink,
    verify_size,
)
from arcflare.contracts.artifacts import Area, ArtifactRef
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceResponseError,
)
from azure.storage.blob import BlobClient, BlobServiceClient, ContentSettings
from azure.storage.blob._deserialize import deserialize_blob_stream

#: files up to the SDK's single Put Blob size (64 MiB) are read into memory for upload anyway
READ_WHOLE = 64 << 20
#: streamed GETs of one fetch: a connection that breaks is resumed where it broke (as the
#: SDK retries a chunk), the hash over the whole still deciding whether the bytes are used
RESUMES = 3


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

    def _put(self, source: Source, media_type: str, *, area: Area) -> ArtifactRef:
        # a file the SDK would upload in one Put Blob (it reads such a file into memory
        # whole) is read once, here: what is hashed is then exactly what is uploaded, and
        # the file is not read a second time
        if not isinstance(source, bytes) and os.stat(source).st_size <= READ_WHOLE:
            with open(source, "rb") as f:
                source = f.read()
        return super()._put(source, media_type, area=area)

    def _read_into(self, ref: ArtifactRef, sink: VerifyingSink) -> None:
        blob = self._blob(ref.area, ref.sha256)
        for attempt in range(1, RESUMES + 1):
            try:
                body = _stream(blob, offset=sink.count)
            except ResourceNotFoundError:
                raise ArtifactMissing(ref, f"no such blob in container "
                                           f"{self.container(ref.area)}") from None
            if attempt == 1:
                # the response says the blob's length: one of another length is refused
                # before a byte of it is read
                verify_size(ref, len(body))
            try:
                for chunk in body:
                    sink.write(chunk)
                return
            # how azure-core says a streamed response broke off (IncompleteReadError is one)
            except (HttpResponseError, ServiceResponseError) as broke:
                if attempt == RESUMES:
                    raise ArtifactError(ref, f"the download broke off {RESUMES} times, the "
                                             f"last after {sink.count} bytes: {broke}") from broke


def _stream(blob: BlobClient, *, offset: int) -> Any:
    """The blob's bytes from `offset` on, as the chunks of one streamed GET (an iterable whose
    len() is the response's Content-Length).

    The SDK's own download_blob() reads its first 32 MiB into memory before handing over a
    byte, then fetches the rest in 4 MiB requests one after the other; one streamed response
    hashed as it arrives moves the same bytes with one round trip and no buffering. This is
    the call download_blob() itself makes (the generated client's Get Blob), with no range
    for a whole blob."""
    _, body = blob._client.blob.download(  # the SDK's own, not public: see above
        range=f"bytes={offset}-" if offset else None, cls=deserialize_blob_stream)
    return body
