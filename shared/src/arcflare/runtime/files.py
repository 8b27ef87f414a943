"""Local files are private: the data dir 0700, databases and logs 0600.

Every ArcFlare process sets a 0077 umask at start (`private_umask`), so what it and its
children (NVFlare included) create is its owner's alone; these helpers also tighten what
exists already, from a version that did not.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
#: SQLite's companions of a database file
_SIDECARS = ("-wal", "-shm", "-journal")


def private_umask() -> None:
    os.umask(0o077)


def private_dir(path: Path) -> Path:
    """mkdir -p, and 0700 on the folder itself (parents made here get it from the umask)."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    _chmod(path, PRIVATE_DIR)
    return path


def private_files(path: Path) -> None:
    """0600 on a database file and the sidecars SQLite keeps beside it."""
    for candidate in (path, *(path.with_name(path.name + s) for s in _SIDECARS)):
        if candidate.exists():
            _chmod(candidate, PRIVATE_FILE)


def _chmod(path: Path, mode: int) -> None:
    try:
        os.chmod(path, mode)
    except PermissionError:  # not ours (a volume mounted by someone else): say so, go on
        logging.getLogger("arcflare.runtime").warning(
            "cannot make %s private (mode %o): it belongs to another user", path, mode)
