"""Job packages: unpacked and checked before anything reaches NVFlare (DESIGN §8).

An archive is unpacked member by member: no absolute paths, no `..`, no links,
no devices, and caps on the total unpacked size and file count (a zip bomb
stops at the cap, whatever its headers claim). A folder is checked the same way:
no link inside may point out of it.
"""
from __future__ import annotations

import json
import shutil
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath


class InvalidPackage(ValueError):
    """The package can never be submitted; the message names what is wrong."""


@dataclass(frozen=True)
class Caps:
    max_bytes: int
    max_files: int


def _safe_member_path(name: str) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise InvalidPackage(f"package: member {name!r} has an absolute path; only relative paths are allowed")
    if ".." in path.parts:
        raise InvalidPackage(f"package: member {name!r} contains '..'; paths must stay inside the package")
    return path


class _Budget:
    def __init__(self, caps: Caps) -> None:
        self.caps, self.bytes, self.files = caps, 0, 0

    def add_file(self) -> None:
        self.files += 1
        if self.files > self.caps.max_files:
            raise InvalidPackage(f"package: more than {self.caps.max_files} files; the cap is {self.caps.max_files}")

    def add_bytes(self, n: int) -> None:
        self.bytes += n
        if self.bytes > self.caps.max_bytes:
            raise InvalidPackage(
                f"package: unpacked size exceeds the cap of {self.caps.max_bytes} bytes"
            )


def _copy_limited(src, dest: Path, budget: _Budget) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as out:
        while chunk := src.read(1 << 16):
            budget.add_bytes(len(chunk))
            out.write(chunk)


def _unzip(archive: Path, dest: Path, budget: _Budget) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            rel = _safe_member_path(info.filename)
            mode = info.external_attr >> 16
            if (mode & 0o170000) == 0o120000:
                raise InvalidPackage(f"package: member {info.filename!r} is a symbolic link; links are not allowed")
            if info.is_dir():
                (dest / rel).mkdir(parents=True, exist_ok=True)
                continue
            budget.add_file()
            with zf.open(info) as src:
                _copy_limited(src, dest / rel, budget)


def _untar(archive: Path, dest: Path, budget: _Budget) -> None:
    with tarfile.open(archive) as tf:
        for member in tf:
            rel = _safe_member_path(member.name)
            if member.issym() or member.islnk():
                raise InvalidPackage(f"package: member {member.name!r} is a link; links are not allowed")
            if member.isdir():
                (dest / rel).mkdir(parents=True, exist_ok=True)
                continue
            if not member.isfile():
                raise InvalidPackage(f"package: member {member.name!r} is not a regular file or folder")
            budget.add_file()
            src = tf.extractfile(member)
            assert src is not None
            with src:
                _copy_limited(src, dest / rel, budget)


def unpack_archive(archive: Path, dest: Path, caps: Caps) -> Path:
    """Unpack into dest (which must not exist) and return the job folder inside it."""
    if not archive.is_file():
        raise InvalidPackage(f"package.path: {archive} is not a file")
    if archive.stat().st_size > caps.max_bytes:
        raise InvalidPackage(f"package: the archive is larger than the cap of {caps.max_bytes} bytes")
    budget = _Budget(caps)
    dest.mkdir(parents=True)
    try:
        if zipfile.is_zipfile(archive):
            _unzip(archive, dest, budget)
        elif tarfile.is_tarfile(archive):
            _untar(archive, dest, budget)
        else:
            raise InvalidPackage("package.path: not a .zip or .tar(.gz) archive")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        shutil.rmtree(dest, ignore_errors=True)
        raise InvalidPackage(f"package: the archive is damaged ({exc})") from exc
    except InvalidPackage:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return job_root(dest)


def job_root(folder: Path) -> Path:
    """The folder holding meta.json: the folder itself or its single top-level folder."""
    if (folder / "meta.json").is_file():
        return folder
    children = [c for c in folder.iterdir() if not c.name.startswith(".")]
    if len(children) == 1 and children[0].is_dir() and (children[0] / "meta.json").is_file():
        return children[0]
    raise InvalidPackage("package: no meta.json found; an NVFlare job folder needs meta.json at its top")


def check_folder(folder: Path, caps: Caps) -> None:
    """Links may not lead out of the folder; the caps hold; the NVFlare structure is there."""
    root = folder.resolve()
    budget = _Budget(caps)
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            target = path.resolve()
            if not target.is_relative_to(root):
                raise InvalidPackage(
                    f"package: {path.relative_to(folder)} links outside the job folder; links must stay inside"
                )
        if path.is_file():
            budget.add_file()
            budget.add_bytes(path.stat().st_size)
    check_job_structure(folder)


def check_job_structure(folder: Path) -> dict:
    """meta.json with a deploy_map whose every app has config/config_fed_{server|client}.json."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except FileNotFoundError:
        raise InvalidPackage("package: meta.json is missing at the top of the job folder") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidPackage(f"package: meta.json is not valid JSON ({exc})") from None
    deploy_map = meta.get("deploy_map") if isinstance(meta, dict) else None
    if not isinstance(deploy_map, dict) or not deploy_map:
        raise InvalidPackage("package: meta.json needs a non-empty deploy_map {app folder: [sites]}")
    for app in deploy_map:
        config = folder / app / "config"
        if not (config / "config_fed_server.json").is_file() and not (config / "config_fed_client.json").is_file():
            raise InvalidPackage(
                f"package: app {app!r} needs {app}/config/config_fed_server.json or config_fed_client.json"
            )
    return meta
