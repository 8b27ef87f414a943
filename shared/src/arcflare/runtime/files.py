"""Local files are private: the data dir 0700, databases and logs 0600.

Every ArcFlare process sets a 0077 umask at start (`private_umask`), so what it and its
children (NVFlare included) create is its owner's alone; these helpers also tighten what
exists already, from a version that did not.
"""
from __future__ import annotations

import os
from pathlib import Path

from arcflare.trust.files import PRIVATE_DIR, PRIVATE_FILE, private_dir, tighten

__all__ = ["PRIVATE_DIR", "PRIVATE_FILE", "private_dir", "private_files", "private_umask"]

#: SQLite's companions of a database file
_SIDECARS = ("-wal", "-shm", "-journal")


def private_umask() -> None:
    os.umask(0o077)


def private_files(path: Path) -> None:
    """0600 on a database file and the sidecars SQLite keeps beside it."""
    for candidate in (path, *(path.with_name(path.name + s) for s in _SIDECARS)):
        if candidate.exists():
            tighten(candidate, PRIVATE_FILE)
