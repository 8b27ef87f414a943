"""Folders through the store: deterministic packing (same folder, same hash) and fetching that
verifies and unpacks safely, leaving nothing behind when it refuses."""
from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path

import pytest
from arcflare.artifacts import ArtifactCorrupt
from arcflare.artifacts.folder import FolderArtifactStore
from arcflare.artifacts.folders import fetch_folder, put_folder
from arcflare.artifacts.packing import PackingError, pack_folder_bytes
from arcflare.artifacts.unpacking import Caps, InvalidArchive
from arcflare.contracts.artifacts import JOB_PACKAGE

CAPS = Caps(max_bytes=10_000_000, max_files=100)


def job_folder(root: Path) -> Path:
    (root / "app" / "config").mkdir(parents=True)
    (root / "app" / "custom").mkdir()
    (root / "meta.json").write_text('{"name": "j", "deploy_map": {"app": ["@ALL"]}}')
    (root / "app" / "config" / "config_fed_server.json").write_text("{}")
    (root / "app" / "custom" / "train.py").write_text("print('training')\n")
    (root / "app" / "custom" / "run.sh").write_text("#!/bin/sh\n")
    (root / "app" / "custom" / "run.sh").chmod(0o700)
    (root / "empty").mkdir()
    return root


def tree(root: Path) -> dict[str, bytes | None]:
    return {p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*"))}


def test_the_same_content_packs_to_the_same_bytes_whatever_its_times_and_modes(
        tmp_path: Path) -> None:
    first = job_folder(tmp_path / "one")
    second = job_folder(tmp_path / "two")
    os.utime(second / "meta.json", (1_000_000, 1_000_000))
    (second / "app" / "config" / "config_fed_server.json").chmod(0o600)
    (second / "app" / "custom" / "run.sh").chmod(0o755)

    assert pack_folder_bytes(first) == pack_folder_bytes(second)
    assert pack_folder_bytes(first) == pack_folder_bytes(first)


def test_entries_are_sorted_with_fixed_owner_time_and_modes(tmp_path: Path) -> None:
    folder = job_folder(tmp_path / "job")
    archive = tmp_path / "job.tar.gz"
    archive.write_bytes(pack_folder_bytes(folder))

    with tarfile.open(archive) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names) and "meta.json" in names and "empty" in names
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
    modes = {m.name: m.mode for m in members}
    assert modes["app"] == 0o755 and modes["app/custom/run.sh"] == 0o755
    assert modes["meta.json"] == 0o644


def test_a_link_inside_is_packed_as_its_content(tmp_path: Path) -> None:
    folder = job_folder(tmp_path / "job")
    (folder / "app" / "custom" / "alias.py").symlink_to("train.py")

    archive = tmp_path / "job.tar.gz"
    archive.write_bytes(pack_folder_bytes(folder))

    with tarfile.open(archive) as tar:
        member = tar.getmember("app/custom/alias.py")
        assert member.isfile()
        assert tar.extractfile(member).read() == b"print('training')\n"


def test_a_link_out_of_the_folder_is_refused_by_name(tmp_path: Path) -> None:
    folder = job_folder(tmp_path / "job")
    (folder / "app" / "secrets").symlink_to(tmp_path.parent)

    with pytest.raises(PackingError, match=r"app/secrets links outside"):
        pack_folder_bytes(folder)


def test_a_fifo_is_refused_by_name(tmp_path: Path) -> None:
    folder = job_folder(tmp_path / "job")
    os.mkfifo(folder / "app" / "pipe")

    with pytest.raises(PackingError, match="app/pipe: is not a regular file or folder"):
        pack_folder_bytes(folder)


def test_a_folder_round_trips_through_the_store(tmp_path: Path) -> None:
    store = FolderArtifactStore(tmp_path / "artifacts")
    folder = job_folder(tmp_path / "job")

    ref = put_folder(store, folder, JOB_PACKAGE, area="packages", scratch=tmp_path)
    again = put_folder(store, folder, JOB_PACKAGE, area="packages", scratch=tmp_path)
    out = fetch_folder(store, ref, tmp_path / "unpacked", area="packages", caps=CAPS)

    assert again == ref
    assert tree(out) == tree(folder)
    assert stat.S_IMODE((out / "app" / "custom" / "run.sh").stat().st_mode) & stat.S_IXUSR
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifacts", "job", "unpacked"]


def test_an_archive_over_the_caps_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    store = FolderArtifactStore(tmp_path / "artifacts")
    folder = job_folder(tmp_path / "job")
    for i in range(20):
        (folder / f"f{i}").write_text("x")
    ref = put_folder(store, folder, JOB_PACKAGE, area="packages")
    place = tmp_path / "place"

    with pytest.raises(InvalidArchive, match=r"^package: more than 10 files or folders"):
        fetch_folder(store, ref, place / "out", area="packages",
                     caps=Caps(max_bytes=10_000_000, max_files=10), what="package")
    assert list(place.iterdir()) == []


def test_a_corrupt_archive_is_refused_before_unpacking_and_leaves_nothing(
        tmp_path: Path) -> None:
    store = FolderArtifactStore(tmp_path / "artifacts")
    ref = put_folder(store, job_folder(tmp_path / "job"), JOB_PACKAGE, area="packages")
    store.path("packages", ref.sha256).write_bytes(b"\x1f\x8b" + b"\0" * (ref.size - 2))
    place = tmp_path / "place"

    with pytest.raises(ArtifactCorrupt, match=ref.locator):
        fetch_folder(store, ref, place / "out", area="packages", caps=CAPS)
    assert list(place.iterdir()) == []


def test_across_file_systems_a_fetch_copies_and_verifies_what_landed(tmp_path: Path,
                                                                    monkeypatch) -> None:
    import errno

    store = FolderArtifactStore(tmp_path / "artifacts")
    data = os.urandom(3 << 20)
    ref = store.put(data, JOB_PACKAGE, area="packages")

    def no_link(*_):
        raise OSError(errno.EXDEV, "cross-device link")

    def no_kernel_copy(*_):
        raise OSError(errno.EXDEV, "cross-device copy")

    monkeypatch.setattr(os, "link", no_link)
    monkeypatch.setattr(os, "copy_file_range", no_kernel_copy)
    fetched = store.fetch(ref, tmp_path / "out", area="packages", max_bytes=10 << 20)
    stored = store.put(fetched, JOB_PACKAGE, area="packages")  # a file: copied by hand too

    assert fetched.read_bytes() == data and fetched.stat().st_nlink == 1
    assert stored == ref
    store.path("packages", ref.sha256).write_bytes(os.urandom(ref.size))
    with pytest.raises(ArtifactCorrupt, match="do not match their sha256"):
        store.fetch(ref, tmp_path / "again", area="packages", max_bytes=10 << 20)
    assert not (tmp_path / "again").exists()
