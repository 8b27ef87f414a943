"""The artifact store contract against every adapter: the folder store, and the azureblob
store against Azurite (the Azure Storage emulator) through the real azure-storage-blob SDK."""
from __future__ import annotations

import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from arcflare.artifacts import ArtifactError, azureblob
from arcflare.artifacts.azureblob import AzureBlobArtifactStore
from arcflare.artifacts.folder import FolderArtifactStore
from arcflare.contracts.artifacts import JOB_PACKAGE, STARTUP_KIT, ArtifactRef
from azure.core.exceptions import IncompleteReadError
from azure.storage.blob import BlobServiceClient

from tests.conformance.artifact_store_contract import CAP, LARGE, ArtifactStoreContract
from tests.support.azurite import Azurite, node_missing, running_azurite


class TestFolderStore(ArtifactStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> FolderArtifactStore:
        return FolderArtifactStore(tmp_path / "artifacts")

    def overwrite(self, store: FolderArtifactStore, ref: ArtifactRef, data: bytes) -> None:
        store.path(ref.area, ref.sha256).write_bytes(data)

    def blobs(self, store: FolderArtifactStore, area: str) -> list[str]:
        folder = store.root / area
        return sorted(p.name for p in folder.glob("*/*")) if folder.is_dir() else []

    def test_kits_are_private_to_their_owner(self, store: FolderArtifactStore) -> None:
        kit = store.put(b"-----BEGIN PRIVATE KEY-----", STARTUP_KIT, area="kits")

        blob = store.path("kits", kit.sha256)
        assert stat.S_IMODE(blob.stat().st_mode) == 0o600
        for folder in (store.root, store.root / "kits", blob.parent):
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700

    def test_an_interrupted_write_leaves_no_blob(self, store: FolderArtifactStore,
                                                 tmp_path: Path) -> None:
        vanishing = tmp_path / "gone.tar.gz"  # the source disappears before it is copied

        with pytest.raises(FileNotFoundError):
            store.put(vanishing, "application/gzip", area="packages")
        assert self.blobs(store, "packages") == []


@pytest.fixture(scope="module")
def azurite() -> Iterator[Azurite]:
    if why := node_missing():
        pytest.skip(why)
    with running_azurite() as server:
        yield server


class TestAzureBlobStore(ArtifactStoreContract):
    @pytest.fixture
    def store(self, azurite: Azurite) -> AzureBlobArtifactStore:
        # a container prefix per test: each starts with an empty store
        service = BlobServiceClient.from_connection_string(azurite.connection_string)
        return AzureBlobArtifactStore(service, container_prefix=f"t{uuid.uuid4().hex[:12]}")

    def overwrite(self, store: AzureBlobArtifactStore, ref: ArtifactRef, data: bytes) -> None:
        store.service.get_blob_client(store.container(ref.area), ref.sha256).upload_blob(
            data, overwrite=True)

    def blobs(self, store: AzureBlobArtifactStore, area: str) -> list[str]:
        container = store.service.get_container_client(store.container(area))
        if not container.exists():
            return []
        return sorted(b.name for b in container.list_blobs())

    def test_kits_have_a_container_of_their_own(self, store: AzureBlobArtifactStore) -> None:
        store.put(b"package", "application/gzip", area="packages")
        store.put(b"kit", STARTUP_KIT, area="kits")

        names = {c.name for c in store.service.list_containers(
            name_starts_with=store.container_prefix)}
        assert names == {f"{store.container_prefix}-packages", f"{store.container_prefix}-kits"}

    def test_a_stored_blob_carries_its_media_type(self, store: AzureBlobArtifactStore) -> None:
        ref = store.put(b"kit", STARTUP_KIT, area="kits")

        props = store.service.get_blob_client(store.container("kits"), ref.sha256) \
            .get_blob_properties()
        assert props.content_settings.content_type == STARTUP_KIT


class TestAzureBlobDownloads:
    """A fetch is one streamed GET; a connection that breaks off is resumed where it broke."""

    @pytest.fixture
    def store(self, azurite: Azurite) -> AzureBlobArtifactStore:
        service = BlobServiceClient.from_connection_string(azurite.connection_string)
        return AzureBlobArtifactStore(service, container_prefix=f"d{uuid.uuid4().hex[:12]}")

    @staticmethod
    def breaking(monkeypatch: pytest.MonkeyPatch, times: int) -> list[int]:
        """The first `times` streams break off after their first chunk; the offsets asked for."""
        real, offsets = azureblob._stream, []

        def stream(blob, *, offset: int):
            offsets.append(offset)
            body = real(blob, offset=offset)
            if len(offsets) > times:
                return body

            class Broken:
                def __len__(self) -> int:
                    return len(body)

                def __iter__(self):
                    yield next(iter(body))
                    raise IncompleteReadError("connection broke off")
            return Broken()

        monkeypatch.setattr(azureblob, "_stream", stream)
        return offsets

    def test_a_broken_download_resumes_where_it_broke(
            self, store: AzureBlobArtifactStore, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> None:
        data = os.urandom(LARGE)
        ref = store.put(data, JOB_PACKAGE, area="packages")
        offsets = self.breaking(monkeypatch, times=2)

        fetched = store.fetch(ref, tmp_path / "out", area="packages", max_bytes=CAP)

        assert fetched.read_bytes() == data
        assert offsets[0] == 0 and 0 < offsets[1] < offsets[2] < len(data)

    def test_a_download_that_keeps_breaking_is_refused_and_leaves_no_file(
            self, store: AzureBlobArtifactStore, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> None:
        ref = store.put(os.urandom(LARGE), JOB_PACKAGE, area="packages")
        self.breaking(monkeypatch, times=azureblob.RESUMES)
        out = tmp_path / "out"
        out.mkdir()

        with pytest.raises(ArtifactError, match=f"{ref.locator}: the download broke off 3 "):
            store.fetch(ref, out / "package", area="packages", max_bytes=CAP)
        assert list(out.iterdir()) == []


def test_settings_choose_the_store(tmp_path: Path, azurite: Azurite) -> None:
    from arcflare.artifacts import open_artifact_store
    from arcflare.runtime.settings import Settings

    local = open_artifact_store(Settings(data_dir=tmp_path))
    blob = open_artifact_store(Settings(
        data_dir=tmp_path, artifact_store="azureblob",
        artifact_blob_connection_string=azurite.connection_string,
        artifact_blob_container_prefix="chosen"))

    assert isinstance(local, FolderArtifactStore) and local.root == tmp_path / "artifacts"
    assert isinstance(blob, AzureBlobArtifactStore) and blob.container("kits") == "chosen-kits"
    assert blob.read(blob.put(b"x", "text/plain", area="results"), area="results",
                     max_bytes=1) == b"x"
    with pytest.raises(ValueError, match="ARCFLARE_ARTIFACT_BLOB_ACCOUNT_URL"):
        open_artifact_store(Settings(data_dir=tmp_path, artifact_store="azureblob"))
