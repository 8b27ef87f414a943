"""Job packages: unpacked and checked before anything reaches NVFlare.

An archive is unpacked member by member: no absolute paths, no `..`, no links,
no devices, and caps on the total unpacked size and on the number of files and
folders (a zip bomb stops at the cap, whatever its headers claim). Whatever else
stops a member (a name clash, a name too long, damaged data) is also the
package's fault and is named with the member; only trouble of the data dir
itself (disk full, read-only) is left to be retried. Unpacking happens in a
scratch folder next to the destination, renamed into place once the job folder
is found, so a refused package leaves nothing behind. A folder is checked the
same way: no link inside may point out of it.
"""
from __future__ import annotations

import errno
import json
import lzma
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath


class InvalidPackage(ValueError):
    """The package can never be submitted; the message names what is wrong."""


@dataclass(frozen=True)
class Caps:
    max_bytes: int
    max_files: int


#: the data dir's own trouble, not the package's: a later attempt can succeed
ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO,
                                errno.EMFILE, errno.ENFILE, errno.ENOMEM})
#: what an OSError while writing a member means for the package
MEMBER_PROBLEMS = {
    errno.EISDIR: "the package already has a folder of that name",
    errno.EEXIST: "its path needs a folder where the package already has a file",
    errno.ENOTDIR: "its path needs a folder where the package already has a file",
    errno.ENAMETOOLONG: "the name is too long for the file system",
}
#: how damaged or unsupported member data shows itself (zipfile: RuntimeError when
#: encrypted, NotImplementedError for an unknown compression method)
MAX_SHOWN_NAME = 200
DAMAGED = (zipfile.BadZipFile, tarfile.TarError, zlib.error, lzma.LZMAError, EOFError,
           RuntimeError, ValueError)


def _shown(name: str) -> str:
    """The member's name for a message: quoted, and cut when it is absurdly long."""
    if len(name) <= MAX_SHOWN_NAME:
        return repr(name)
    return repr(name[:MAX_SHOWN_NAME] + "…") + f" ({len(name)} characters)"


@contextmanager
def _member(name: str) -> Iterator[None]:
    """Turns whatever stops one member into an InvalidPackage naming it."""
    try:
        yield
    except InvalidPackage:
        raise
    except OSError as exc:
        if exc.errno in ENVIRONMENT_ERRNOS:
            raise
        problem = MEMBER_PROBLEMS.get(exc.errno or 0, exc.strerror or str(exc))
        raise InvalidPackage(f"package: member {_shown(name)} cannot be unpacked: {problem}") from None
    except DAMAGED as exc:
        raise InvalidPackage(f"package: member {_shown(name)} cannot be unpacked: {exc}") from None


def _safe_member_path(name: str, *, is_dir: bool) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise InvalidPackage(f"package: member {_shown(name)} has an absolute path; only relative paths are allowed")
    if ".." in path.parts:
        raise InvalidPackage(f"package: member {_shown(name)} contains '..'; paths must stay inside the package")
    if not path.parts and not is_dir:
        raise InvalidPackage(f"package: member {_shown(name)} is a file with no file name")
    return path


class _Budget:
    def __init__(self, caps: Caps) -> None:
        self.caps, self.bytes, self.entries = caps, 0, 0

    def add_entry(self) -> None:
        """A file or a folder: both cost an inode, and an archive can hold millions of either."""
        self.entries += 1
        if self.entries > self.caps.max_files:
            raise InvalidPackage(
                f"package: more than {self.caps.max_files} files or folders; "
                f"the cap is {self.caps.max_files}"
            )

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


def _place(name: str, target: Path, budget: _Budget, open_data=None) -> None:
    """One checked member: a folder (no data to open) or a file copied within the caps."""
    budget.add_entry()
    with _member(name):
        if open_data is None:
            target.mkdir(parents=True, exist_ok=True)
            return
        with open_data() as src:
            _copy_limited(src, target, budget)


def _unzip(archive: Path, dest: Path, budget: _Budget) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            rel = _safe_member_path(info.filename, is_dir=info.is_dir())
            mode = info.external_attr >> 16
            if (mode & 0o170000) == 0o120000:
                raise InvalidPackage(f"package: member {_shown(info.filename)} is a symbolic link; links are not allowed")
            _place(info.filename, dest / rel, budget,
                   None if info.is_dir() else lambda info=info: zf.open(info))


def _untar(archive: Path, dest: Path, budget: _Budget) -> None:
    with tarfile.open(archive) as tf:
        for member in tf:
            rel = _safe_member_path(member.name, is_dir=member.isdir())
            if member.issym() or member.islnk():
                raise InvalidPackage(f"package: member {_shown(member.name)} is a link; links are not allowed")
            if not member.isdir() and not member.isfile():
                raise InvalidPackage(f"package: member {_shown(member.name)} is not a regular file or folder")
            _place(member.name, dest / rel, budget,
                   None if member.isdir() else lambda member=member: tf.extractfile(member))


def _unpack_into(archive: Path, scratch: Path, caps: Caps) -> None:
    budget = _Budget(caps)
    try:
        if zipfile.is_zipfile(archive):
            _unzip(archive, scratch, budget)
        elif tarfile.is_tarfile(archive):
            _untar(archive, scratch, budget)
        else:
            raise InvalidPackage("package.path: not a .zip or .tar(.gz) archive")
    except InvalidPackage:
        raise
    except OSError as exc:  # reading the archive itself, between members (gzip, bz2)
        if exc.errno in ENVIRONMENT_ERRNOS:
            raise
        raise InvalidPackage(f"package: the archive is damaged ({exc})") from None
    except DAMAGED as exc:
        raise InvalidPackage(f"package: the archive is damaged ({exc})") from None


def unpack_archive(archive: Path, dest: Path, caps: Caps) -> Path:
    """Unpack into dest (which must not exist) and return the job folder inside it;
    on any failure dest does not exist afterwards."""
    if not archive.is_file():
        raise InvalidPackage(f"package.path: {archive} is not a file")
    if archive.stat().st_size > caps.max_bytes:
        raise InvalidPackage(f"package: the archive is larger than the cap of {caps.max_bytes} bytes")
    dest.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".unpacking", dir=dest.parent))
    try:
        _unpack_into(archive, scratch, caps)
        job = job_root(scratch).relative_to(scratch)
        scratch.rename(dest)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return dest / job


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
        if path.is_dir():
            budget.add_entry()
        elif path.is_file():
            budget.add_entry()
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
