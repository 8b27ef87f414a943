"""Archives from elsewhere (job packages, job results, startup kits), unpacked safely.

An archive is unpacked member by member: no absolute paths, no `..`, no links,
no devices, and caps on the total unpacked size and on the number of files and
folders (a zip bomb stops at the cap, whatever its headers claim). Whatever else
stops a member (a name clash, a name too long, damaged data) is also the
archive's fault and is named with the member; only trouble of the data dir
itself (disk full, read-only) is left to be retried. Unpacking happens in a
scratch folder next to the destination, renamed into place once the caller's
check of the content passed, so a refused archive leaves nothing behind.
"""
from __future__ import annotations

import errno
import lzma
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath


class InvalidArchive(ValueError):
    """The archive can never be used; the message names what is wrong (and which member)."""


@dataclass(frozen=True)
class Caps:
    max_bytes: int
    max_files: int


#: the data dir's own trouble, not the archive's: a later attempt can succeed
ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO,
                                errno.EMFILE, errno.ENFILE, errno.ENOMEM})
#: what an OSError while writing a member means for the archive
MEMBER_PROBLEMS = {
    errno.EISDIR: "the archive already has a folder of that name",
    errno.EEXIST: "its path needs a folder where the archive already has a file",
    errno.ENOTDIR: "its path needs a folder where the archive already has a file",
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
    """Turns whatever stops one member into an InvalidArchive naming it."""
    try:
        yield
    except InvalidArchive:
        raise
    except OSError as exc:
        if exc.errno in ENVIRONMENT_ERRNOS:
            raise
        problem = MEMBER_PROBLEMS.get(exc.errno or 0, exc.strerror or str(exc))
        raise InvalidArchive(f"member {_shown(name)} cannot be unpacked: {problem}") from None
    except DAMAGED as exc:
        raise InvalidArchive(f"member {_shown(name)} cannot be unpacked: {exc}") from None


def _safe_member_path(name: str, *, is_dir: bool) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise InvalidArchive(f"member {_shown(name)} has an absolute path; only relative paths are allowed")
    if ".." in path.parts:
        raise InvalidArchive(f"member {_shown(name)} contains '..'; paths must stay inside the archive")
    if not path.parts and not is_dir:
        raise InvalidArchive(f"member {_shown(name)} is a file with no file name")
    return path


class _Budget:
    def __init__(self, caps: Caps) -> None:
        self.caps, self.bytes, self.entries = caps, 0, 0

    def add_entry(self) -> None:
        """A file or a folder: both cost an inode, and an archive can hold millions of either."""
        self.entries += 1
        if self.entries > self.caps.max_files:
            raise InvalidArchive(
                f"more than {self.caps.max_files} files or folders; "
                f"the cap is {self.caps.max_files}"
            )

    def add_bytes(self, n: int) -> None:
        self.bytes += n
        if self.bytes > self.caps.max_bytes:
            raise InvalidArchive(
                f"unpacked size exceeds the cap of {self.caps.max_bytes} bytes"
            )


def _copy_limited(src, dest: Path, budget: _Budget) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as out:
        while chunk := src.read(1 << 16):
            budget.add_bytes(len(chunk))
            out.write(chunk)


def _place(name: str, target: Path, budget: _Budget, open_data=None, mode: int = 0) -> None:
    """One checked member: a folder (no data to open) or a file copied within the caps.
    Of the member's mode only the owner's execute bit is kept (scripts stay runnable);
    everything else follows the process's umask."""
    budget.add_entry()
    with _member(name):
        if open_data is None:
            target.mkdir(parents=True, exist_ok=True)
            return
        with open_data() as src:
            _copy_limited(src, target, budget)
        if mode & stat.S_IXUSR:
            target.chmod(target.stat().st_mode | stat.S_IXUSR)


def _unzip(archive: Path, dest: Path, budget: _Budget) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            rel = _safe_member_path(info.filename, is_dir=info.is_dir())
            mode = info.external_attr >> 16
            if (mode & 0o170000) == 0o120000:
                raise InvalidArchive(f"member {_shown(info.filename)} is a symbolic link; links are not allowed")
            _place(info.filename, dest / rel, budget,
                   None if info.is_dir() else lambda info=info: zf.open(info), mode)


def _untar(archive: Path, dest: Path, budget: _Budget) -> None:
    with tarfile.open(archive) as tf:
        for member in tf:
            rel = _safe_member_path(member.name, is_dir=member.isdir())
            if member.issym() or member.islnk():
                raise InvalidArchive(f"member {_shown(member.name)} is a link; links are not allowed")
            if not member.isdir() and not member.isfile():
                raise InvalidArchive(f"member {_shown(member.name)} is not a regular file or folder")
            _place(member.name, dest / rel, budget,
                   None if member.isdir() else lambda member=member: tf.extractfile(member),
                   member.mode)


def _unpack_into(archive: Path, scratch: Path, caps: Caps) -> None:
    budget = _Budget(caps)
    try:
        if zipfile.is_zipfile(archive):
            _unzip(archive, scratch, budget)
        elif tarfile.is_tarfile(archive):
            _untar(archive, scratch, budget)
        else:
            raise InvalidArchive("not a .zip or .tar(.gz) archive")
    except InvalidArchive:
        raise
    except OSError as exc:  # reading the archive itself, between members (gzip, bz2)
        if exc.errno in ENVIRONMENT_ERRNOS:
            raise
        raise InvalidArchive(f"the archive is damaged ({exc})") from None
    except DAMAGED as exc:
        raise InvalidArchive(f"the archive is damaged ({exc})") from None


#: what the caller looks for in an unpacked archive: the folder (inside scratch) it wants,
#: or InvalidArchive when the content is not what it should be
Locate = Callable[[Path], Path]


def unpack_archive(archive: Path, dest: Path, caps: Caps, *, what: str = "archive",
                   locate: Locate | None = None) -> Path:
    """Unpack into dest (which must not exist) and return the folder `locate` finds in it
    (dest itself without one); on any failure dest does not exist afterwards. Every
    refusal is an InvalidArchive whose message starts with `what`."""
    try:
        if not archive.is_file():
            raise InvalidArchive(f"{archive} is not a file")
        if archive.stat().st_size > caps.max_bytes:
            raise InvalidArchive(f"the archive is larger than the cap of {caps.max_bytes} bytes")
        dest.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".unpacking",
                                        dir=dest.parent))
        try:
            _unpack_into(archive, scratch, caps)
            found = (locate(scratch) if locate else scratch).relative_to(scratch)
            scratch.rename(dest)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
    except InvalidArchive as exc:
        raise type(exc)(f"{what}: {exc}") from None
    return dest / found
