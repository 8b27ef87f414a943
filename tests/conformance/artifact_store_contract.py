"""What every artifact store promises, as one test class each adapter's tests subclass.

A subclass provides the `store` fixture (an empty store) and two ways to tamper with it
behind the port's back: `overwrite(ref, data)` puts other bytes under a reference's name,
`blobs(area)` lists the names the store holds in an area.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from arcflare.artifacts import (
    ArtifactCorrupt,
    ArtifactMissing,
    ArtifactRefused,
    ArtifactStore,
    ArtifactTooLarge,
)
from arcflare.contracts.artifacts import JOB_PACKAGE, STARTUP_KIT, ArtifactRef

CAP = 64 << 20
#: bigger than one chunk of every adapter, so streaming is part of the test
LARGE = 5 << 20


def absent_ref(store: ArtifactStore, data: bytes = b"never stored") -> ArtifactRef:
    sha = hashlib.sha256(data).hexdigest()
    return ArtifactRef(sha256=sha, size=len(data), media_type=JOB_PACKAGE,
                       locator=f"{store.name}:packages/{sha}")


class ArtifactStoreContract:
    @pytest.fixture
    def store(self) -> ArtifactStore:
        raise NotImplementedError

    @pytest.fixture
    def out(self, tmp_path: Path) -> Path:
        """Where fetched files go (apart from the store, which may live in tmp_path too)."""
        folder = tmp_path / "fetched"
        folder.mkdir()
        return folder

    def overwrite(self, store: ArtifactStore, ref: ArtifactRef, data: bytes) -> None:
        raise NotImplementedError

    def blobs(self, store: ArtifactStore, area: str) -> list[str]:
        raise NotImplementedError

    # --- put and fetch -------------------------------------------------------------
    def test_bytes_come_back_as_they_went_in_with_a_reference_to_their_content(
            self, store: ArtifactStore, out: Path) -> None:
        data = os.urandom(LARGE)

        ref = store.put(data, JOB_PACKAGE, area="packages")
        fetched = store.fetch(ref, out / "out.tar.gz", area="packages", max_bytes=CAP)

        assert fetched.read_bytes() == data
        assert ref.sha256 == hashlib.sha256(data).hexdigest()
        assert (ref.size, ref.media_type) == (len(data), JOB_PACKAGE)
        assert ref.locator == f"{store.name}:packages/{ref.sha256}"
        assert store.read(ref, area="packages", max_bytes=CAP) == data
        assert store.exists(ref)

    def test_a_file_and_its_bytes_are_one_artifact_stored_once(
            self, store: ArtifactStore, out: Path) -> None:
        data = os.urandom(100_000)
        path = out / "package.tar.gz"
        path.write_bytes(data)

        first = store.put(path, JOB_PACKAGE, area="packages")
        again = store.put(data, JOB_PACKAGE, area="packages")

        assert first == again
        assert self.blobs(store, "packages") == [first.sha256]

    def test_an_empty_artifact_round_trips(self, store: ArtifactStore, out: Path) -> None:
        ref = store.put(b"", JOB_PACKAGE, area="packages")

        assert store.fetch(ref, out / "empty", area="packages",
                           max_bytes=CAP).read_bytes() == b""

    def test_fetch_replaces_an_existing_destination(self, store: ArtifactStore,
                                                    out: Path) -> None:
        ref = store.put(b"new content", JOB_PACKAGE, area="packages")
        dest = out / "out"
        dest.write_bytes(b"old content, longer than the new")

        store.fetch(ref, dest, area="packages", max_bytes=CAP)

        assert dest.read_bytes() == b"new content"

    def test_a_deleted_artifact_is_gone_and_deleting_again_is_no_error(
            self, store: ArtifactStore, out: Path) -> None:
        kit = store.put(b"site key", STARTUP_KIT, area="kits")

        store.delete(kit)
        store.delete(kit)

        assert not store.exists(kit) and self.blobs(store, "kits") == []
        with pytest.raises(ArtifactMissing):
            store.fetch(kit, out / "kit", area="kits", max_bytes=CAP)

    # --- what is never used ----------------------------------------------------------
    def test_a_missing_blob_is_named_and_leaves_no_file(self, store: ArtifactStore,
                                                        out: Path) -> None:
        ref = absent_ref(store)

        with pytest.raises(ArtifactMissing, match=f"artifact {ref.locator}: "):
            store.fetch(ref, out / "out", area="packages", max_bytes=CAP)
        assert not store.exists(ref)
        assert list(out.iterdir()) == []

    def test_bytes_that_do_not_match_their_hash_are_refused_and_leave_no_file(
            self, store: ArtifactStore, out: Path) -> None:
        ref = store.put(os.urandom(LARGE), JOB_PACKAGE, area="packages")
        self.overwrite(store, ref, os.urandom(LARGE))  # same size, other bytes

        with pytest.raises(ArtifactCorrupt, match=f"{ref.locator}: the stored bytes do not "
                                                  "match their sha256"):
            store.fetch(ref, out / "out", area="packages", max_bytes=CAP)
        with pytest.raises(ArtifactCorrupt):
            store.read(ref, area="packages", max_bytes=CAP)
        assert list(out.iterdir()) == []

    def test_a_blob_longer_than_its_reference_is_refused(self, store: ArtifactStore,
                                                         out: Path) -> None:
        data = b"x" * 1000
        ref = store.put(data, JOB_PACKAGE, area="packages")
        self.overwrite(store, ref, data + b"and a tail someone appended")

        # streamed: refused at the first byte too many; a file: its length is known at once
        with pytest.raises(ArtifactCorrupt, match=r"more than the referenced 1000 bytes|"
                                                  r"holds 1027 bytes, the reference says 1000"):
            store.fetch(ref, out / "out", area="packages", max_bytes=CAP)
        assert list(out.iterdir()) == []

    def test_a_blob_shorter_than_its_reference_is_refused(self, store: ArtifactStore,
                                                          out: Path) -> None:
        data = b"y" * 1000
        ref = store.put(data, JOB_PACKAGE, area="packages")
        self.overwrite(store, ref, data[:10])

        with pytest.raises(ArtifactCorrupt, match="holds 10 bytes, the reference says 1000"):
            store.fetch(ref, out / "out", area="packages", max_bytes=CAP)

    def test_a_reference_over_the_cap_is_refused_before_any_byte_moves(
            self, store: ArtifactStore, out: Path) -> None:
        ref = absent_ref(store)  # not even there: the cap is checked first

        with pytest.raises(ArtifactTooLarge, match=f"{ref.locator}: {ref.size} bytes is more "
                                                   "than the cap of 5 bytes"):
            store.fetch(ref, out / "out", area="packages", max_bytes=5)

    def test_another_stores_reference_is_refused(self, store: ArtifactStore,
                                                 out: Path) -> None:
        ref = store.put(b"content", JOB_PACKAGE, area="packages")
        other = "azureblob" if store.name != "azureblob" else "folder"
        foreign = ref.model_copy(update={"locator": f"{other}:packages/{ref.sha256}"})

        with pytest.raises(ArtifactRefused, match="every process of a deployment must share"):
            store.fetch(foreign, out / "out", area="packages", max_bytes=CAP)
        assert not store.exists(foreign)

    def test_kits_are_kept_apart_and_never_read_as_packages(self, store: ArtifactStore,
                                                            out: Path) -> None:
        kit = store.put(b"-----BEGIN PRIVATE KEY-----", STARTUP_KIT, area="kits")
        as_package = kit.model_copy(update={"locator": f"{store.name}:packages/{kit.sha256}"})

        with pytest.raises(ArtifactRefused, match="only 'packages' is read here"):
            store.fetch(kit, out / "out", area="packages", max_bytes=CAP)
        with pytest.raises(ArtifactMissing):  # the same hash names nothing among packages
            store.fetch(as_package, out / "out", area="packages", max_bytes=CAP)
        assert self.blobs(store, "packages") == []
        assert self.blobs(store, "kits") == [kit.sha256]

    def test_a_media_type_not_wanted_is_refused(self, store: ArtifactStore,
                                                out: Path) -> None:
        ref = store.put(b"content", "text/plain", area="packages")

        with pytest.raises(ArtifactRefused, match="media type 'text/plain' is not one of"):
            store.fetch(ref, out / "out", area="packages", max_bytes=CAP,
                        media_types={JOB_PACKAGE})
