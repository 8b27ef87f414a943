"""A folder as one deterministic archive: the same content always gives the same bytes.

Entries in sorted order, timestamps 0, owner 0:0 without names, modes 0755 for folders
and executables and 0644 for the rest, gzip without a timestamp or a file name — so
packing a folder again (another day, another checkout, another umask) gives the same
sha256, and the store keeps it once. Only folders and regular files go in: a link whose
target stays inside the folder is packed as the file or folder it points to, a link out
of the folder or anything else (a device, a socket) is refused by name.
"""
from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from pathlib import Path
from typing import BinaryIO

DIR_MODE = 0o755
EXEC_MODE = 0o755
FILE_MODE = 0o644
#: fast over small: a package is hashed and moved far more often than it is written
COMPRESSLEVEL = 6


class PackingError(ValueError):
    """The folder cannot be packed as it is; the message names the entry."""


def _entries(root: Path) -> list[tuple[str, Path]]:
    """(name in the archive, real path) of every folder and file, sorted by name."""
    found: list[tuple[str, Path]] = []
    real_root = root.resolve()
    for folder, dirs, files in os.walk(root, followlinks=True):
        base = Path(folder)
        for name in sorted(dirs + files):
            path = base / name
            if path.is_symlink() and not path.resolve().is_relative_to(real_root):
                raise PackingError(f"{path.relative_to(root)} links outside {root}; links "
                                   "must stay inside the folder")
            found.append((path.relative_to(root).as_posix(), path))
        # a link to a folder above itself would be walked for ever
        dirs[:] = [d for d in dirs if not _loops(base / d, real_root)]
    return sorted(found)


def _loops(path: Path, root: Path) -> bool:
    if not path.is_symlink():
        return False
    target = path.resolve()
    return target == root or path.parent.resolve().is_relative_to(target)


def _info(name: str, path: Path) -> tarfile.TarInfo:
    try:
        st = path.stat()
    except OSError as exc:
        raise PackingError(f"{name}: cannot be read ({exc.strerror or exc})") from None
    info = tarfile.TarInfo(name)
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    if stat.S_ISDIR(st.st_mode):
        info.type, info.mode = tarfile.DIRTYPE, DIR_MODE
    elif stat.S_ISREG(st.st_mode):
        info.type, info.size = tarfile.REGTYPE, st.st_size
        info.mode = EXEC_MODE if st.st_mode & stat.S_IXUSR else FILE_MODE
    else:
        raise PackingError(f"{name}: is not a regular file or folder")
    return info


def pack_folder(folder: Path, out: BinaryIO) -> None:
    """Write the folder's content (not the folder itself) as a tar.gz to `out`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PackingError(f"{folder} is not a folder")
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0,
                       compresslevel=COMPRESSLEVEL) as zipped, \
            tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, path in _entries(folder):
            info = _info(name, path)
            if info.isdir():
                tar.addfile(info)
                continue
            with open(path, "rb") as data:
                tar.addfile(info, data)


def pack_folder_bytes(folder: Path) -> bytes:
    """The archive in memory: for small folders (startup kits)."""
    out = io.BytesIO()
    pack_folder(folder, out)
    return out.getvalue()
