"""Malicious and broken job packages are refused with a reason that names the problem."""
from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest
from arcflare.job_controller.packages import (
    Caps,
    InvalidPackage,
    check_job_structure,
    unpack_archive,
)

CAPS = Caps(max_bytes=1_000_000, max_files=100)
META = json.dumps({"name": "j", "deploy_map": {"app": ["@ALL"]}})
SERVER = json.dumps({"format_version": 2, "workflows": []})


def _zip(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, target)
    return path


def _good_members(prefix: str = "job/") -> dict[str, bytes]:
    return {f"{prefix}meta.json": META.encode(), f"{prefix}app/config/config_fed_server.json": SERVER.encode()}


def test_a_well_formed_zip_unpacks_to_its_job_folder(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "ok.zip", _good_members())

    job = unpack_archive(archive, tmp_path / "out", CAPS)

    assert (job / "meta.json").is_file() and job.name == "job"


def test_zip_slip_is_rejected(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "slip.zip", {**_good_members(), "job/../../evil.py": b"x"})

    with pytest.raises(InvalidPackage, match=r"contains '\.\.'"):
        unpack_archive(archive, tmp_path / "out", CAPS)
    assert not (tmp_path / "evil.py").exists() and not (tmp_path / "out").exists()


def test_absolute_member_is_rejected(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "abs.zip", {**_good_members(), "/etc/evil": b"x"})

    with pytest.raises(InvalidPackage, match="absolute path"):
        unpack_archive(archive, tmp_path / "out", CAPS)


def test_symlink_in_zip_is_rejected(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "link.zip", _good_members(), links={"job/app/custom/x": "/etc/passwd"})

    with pytest.raises(InvalidPackage, match="symbolic link"):
        unpack_archive(archive, tmp_path / "out", CAPS)


def test_symlink_in_tar_is_rejected(tmp_path: Path) -> None:
    archive = tmp_path / "link.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for name, data in _good_members().items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("job/app/custom/x")
        link.type, link.linkname = tarfile.SYMTYPE, "../../../../etc/passwd"
        tf.addfile(link)

    with pytest.raises(InvalidPackage, match="is a link"):
        unpack_archive(archive, tmp_path / "out", CAPS)


def test_oversized_content_stops_at_the_cap_whatever_the_headers_say(tmp_path: Path) -> None:
    # 5 MB of zeros compresses to a few KB: the archive is small, the content is not
    archive = _zip(tmp_path / "bomb.zip", {**_good_members(), "job/app/custom/big.bin": b"\0" * 5_000_000})
    assert archive.stat().st_size < CAPS.max_bytes

    with pytest.raises(InvalidPackage, match="exceeds the cap"):
        unpack_archive(archive, tmp_path / "out", CAPS)


def test_too_many_files_are_rejected(tmp_path: Path) -> None:
    many = {f"job/app/custom/f{i}.py": b"" for i in range(CAPS.max_files + 1)}
    archive = _zip(tmp_path / "many.zip", {**_good_members(), **many})

    with pytest.raises(InvalidPackage, match="more than 100 files"):
        unpack_archive(archive, tmp_path / "out", CAPS)


def test_an_archive_without_an_nvflare_job_is_rejected(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "nojob.zip", {"readme.txt": b"hello"})

    with pytest.raises(InvalidPackage, match="no meta.json"):
        unpack_archive(archive, tmp_path / "out", CAPS)


def test_a_job_whose_app_has_no_config_is_rejected(tmp_path: Path) -> None:
    job = tmp_path / "job"
    job.mkdir()
    (job / "meta.json").write_text(META)

    with pytest.raises(InvalidPackage, match="app 'app' needs"):
        check_job_structure(job)


def _tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tf.addfile(member)
                continue
            name, data = member
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def _left_behind(tmp_path: Path) -> list[str]:
    """What unpacking into tmp_path/place/out left in tmp_path/place."""
    place = tmp_path / "place"
    return sorted(p.name for p in place.iterdir()) if place.exists() else []


def test_a_member_named_dot_is_rejected_by_name(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "dot.zip", {**_good_members(), ".": b"x"})

    with pytest.raises(InvalidPackage, match=r"member '\.' .*no file name"):
        unpack_archive(archive, tmp_path / "place" / "out", CAPS)
    assert _left_behind(tmp_path) == []


def test_a_file_where_the_package_has_a_folder_is_rejected_by_name(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "clash.zip", {**_good_members(), "job/app": b"not a folder"})

    with pytest.raises(InvalidPackage, match=r"member 'job/app' .*already has a folder"):
        unpack_archive(archive, tmp_path / "place" / "out", CAPS)
    assert _left_behind(tmp_path) == []


def test_a_folder_where_the_package_has_a_file_is_rejected_by_name(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "clash.tar.gz", [
        *_good_members().items(), ("job/custom", b"a file"), ("job/custom/train.py", b"x")])

    with pytest.raises(InvalidPackage, match=r"member 'job/custom/train.py' .*already has a file"):
        unpack_archive(archive, tmp_path / "place" / "out", CAPS)
    assert _left_behind(tmp_path) == []


def test_a_name_longer_than_the_file_system_allows_is_rejected_by_name(tmp_path: Path) -> None:
    long_name = "job/app/custom/" + "n" * 300 + ".py"
    archive = _zip(tmp_path / "long.zip", {**_good_members(), long_name: b"x"})

    with pytest.raises(InvalidPackage, match=r"member 'job/app/custom/n+…' \(318 characters\) .*too long"):
        unpack_archive(archive, tmp_path / "place" / "out", CAPS)
    assert _left_behind(tmp_path) == []


def test_folder_entries_count_against_the_file_cap(tmp_path: Path) -> None:
    folders = {f"job/app/custom/d{i}/": b"" for i in range(CAPS.max_files)}
    archive = _zip(tmp_path / "folders.zip", {**_good_members(), **folders})

    with pytest.raises(InvalidPackage, match="more than 100 files or folders"):
        unpack_archive(archive, tmp_path / "place" / "out", CAPS)
    assert _left_behind(tmp_path) == []


def test_a_hard_link_in_tar_is_rejected_by_name(tmp_path: Path) -> None:
    link = tarfile.TarInfo("job/app/custom/passwd")
    link.type, link.linkname = tarfile.LNKTYPE, "job/meta.json"
    archive = _tar(tmp_path / "hard.tar.gz", [*_good_members().items(), link])

    with pytest.raises(InvalidPackage, match=r"member 'job/app/custom/passwd' is a link"):
        unpack_archive(archive, tmp_path / "place" / "out", CAPS)


def test_an_absolute_or_climbing_tar_member_is_rejected_by_name(tmp_path: Path) -> None:
    absolute = _tar(tmp_path / "abs.tar.gz", [*_good_members().items(), ("/tmp/evil.py", b"x")])
    climbing = _tar(tmp_path / "up.tar.gz", [*_good_members().items(), ("job/../../evil.py", b"x")])

    with pytest.raises(InvalidPackage, match=r"member '/tmp/evil.py' has an absolute path"):
        unpack_archive(absolute, tmp_path / "place" / "out", CAPS)
    with pytest.raises(InvalidPackage, match=r"member 'job/\.\./\.\./evil.py' contains '\.\.'"):
        unpack_archive(climbing, tmp_path / "place" / "out", CAPS)
    assert _left_behind(tmp_path) == []


def test_a_device_in_tar_is_rejected_by_name(tmp_path: Path) -> None:
    device = tarfile.TarInfo("job/app/custom/null")
    device.type, device.devmajor, device.devminor = tarfile.CHRTYPE, 1, 3
    archive = _tar(tmp_path / "dev.tar.gz", [*_good_members().items(), device])

    with pytest.raises(InvalidPackage, match=r"member 'job/app/custom/null' is not a regular file"):
        unpack_archive(archive, tmp_path / "place" / "out", CAPS)


def test_a_damaged_member_is_rejected_by_name(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "crc.zip", {**_good_members(), "job/app/custom/data.bin": b"a" * 4096})
    raw = bytearray(archive.read_bytes())
    at = raw.find(b"job/app/custom/data.bin") + len("job/app/custom/data.bin")
    raw[at + 2] ^= 0xFF  # inside the deflated data of that member
    archive.write_bytes(bytes(raw))

    with pytest.raises(InvalidPackage, match=r"member 'job/app/custom/data.bin'"):
        unpack_archive(archive, tmp_path / "place" / "out", CAPS)
    assert _left_behind(tmp_path) == []


def test_an_unpacked_archive_without_a_job_leaves_nothing_behind(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "nojob.zip", {"readme.txt": b"hello"})

    with pytest.raises(InvalidPackage, match="no meta.json"):
        unpack_archive(archive, tmp_path / "place" / "out", CAPS)
    assert _left_behind(tmp_path) == []


def test_a_tar_of_dot_with_its_own_folder_entry_unpacks(tmp_path: Path) -> None:
    # `tar -C job_parent .` names its first member './': a folder, not a nameless file
    source = tmp_path / "src"
    for name, data in _good_members().items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(data)
    archive = tmp_path / "dot.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(source, arcname=".")

    job = unpack_archive(archive, tmp_path / "place" / "out", CAPS)

    assert job == tmp_path / "place" / "out" / "job" and (job / "meta.json").is_file()
