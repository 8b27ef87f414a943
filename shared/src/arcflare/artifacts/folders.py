"""Folders through the store: packed deterministically on the way in, fetched, verified
and unpacked safely on the way out."""
from __future__ import annotations

import tempfile
from collections.abc import Collection
from pathlib import Path

from arcflare.artifacts.packing import pack_folder
from arcflare.artifacts.port import ArtifactStore
from arcflare.artifacts.unpacking import Caps, Locate, unpack_archive
from arcflare.contracts.artifacts import Area, ArtifactRef


def put_folder(store: ArtifactStore, folder: Path, media_type: str, *, area: Area,
               scratch: Path | None = None) -> ArtifactRef:
    """Pack the folder (in a temporary file under `scratch`) and store the archive."""
    handle, name = tempfile.mkstemp(prefix=".pack-", suffix=".tar.gz", dir=scratch)
    archive = Path(name)
    try:
        with open(handle, "wb") as out:
            pack_folder(folder, out)
        return store.put(archive, media_type, area=area)
    finally:
        archive.unlink(missing_ok=True)


def fetch_folder(store: ArtifactStore, ref: ArtifactRef, dest: Path, *, area: Area, caps: Caps,
                 media_types: Collection[str] | None = None, what: str = "archive",
                 locate: Locate | None = None) -> Path:
    """Fetch and verify the archive, then unpack it into dest (which must not exist) within
    the caps; returns what `locate` finds in it. On any failure dest does not exist: the
    archive waits beside it under a temporary name and is removed either way."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    archive = dest.with_name(f".{dest.name}.archive")
    try:
        store.fetch(ref, archive, area=area, max_bytes=caps.max_bytes, media_types=media_types)
        return unpack_archive(archive, dest, caps, what=what, locate=locate)
    finally:
        archive.unlink(missing_ok=True)

