"""The folder artifact store: blobs as files under <root>/<area>/<ab>/<sha256>.

The local default (<data_dir>/artifacts): only processes that see this folder can
share it, which is every process of `arcflare local up`. Each area is a folder of its
own, 0700, and every blob 0600, so startup kits (private keys) sit apart from packages
and results and are their owner's alone. A blob is written to a temporary name in its
folder and renamed into place: it is complete or absent, and never changed after.

Moving bytes costs little here next to hashing them, so a file is put in one pass (the
kernel copies while what landed is hashed, arcflare.artifacts.copying), and a fetch onto
the same file system is a hard link to the blob whose bytes are then hashed: what is
verified is exactly what the reader gets, and the reader only reads it (an unpacker).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path

from arcflare.artifacts.copying import copy_hashing
from arcflare.artifacts.port import (
    CHUNK,
    ArtifactMissing,
    ArtifactStore,
    Source,
    VerifyingSink,
    verify,
    verify_size,
)
from arcflare.contracts.artifacts import Area, ArtifactRef
from arcflare.runtime.files import PRIVATE_FILE, private_dir


class FolderArtifactStore(ArtifactStore):
    name = "folder"

    def __init__(self, root: Path) -> None:
        self.root = private_dir(Path(root).resolve())

    def path(self, area: str, sha256: str) -> Path:
        # area and sha256 come from a validated reference: a known word and 64 hex digits
        return self.root / area / sha256[:2] / sha256

    def _holds(self, area: str, sha256: str, size: int) -> bool:
        try:
            return self.path(area, sha256).stat().st_size == size
        except FileNotFoundError:
            return False

    def _write(self, area: str, sha256: str, source: Source, size: int,
               media_type: str) -> None:
        target = self.path(area, sha256)
        private_dir(self.root / area)
        private_dir(target.parent)
        partial = target.with_name(f".{sha256}.{uuid.uuid4().hex[:8]}.partial")
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
            with open(fd, "wb") as out:
                if isinstance(source, bytes):
                    out.write(source)
                else:
                    with open(source, "rb") as src:
                        shutil.copyfileobj(src, out, CHUNK)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)

    def _delete(self, area: str, sha256: str) -> None:
        self.path(area, sha256).unlink(missing_ok=True)

    def _put(self, source: Source, media_type: str, *, area: Area) -> ArtifactRef:
        if isinstance(source, bytes):
            return super()._put(source, media_type, area=area)
        folder = private_dir(self.root / area)
        partial = folder / f".{uuid.uuid4().hex}.partial"
        try:
            sha256, size = copy_hashing(Path(source), partial)
            ref = ArtifactRef(sha256=sha256, size=size, media_type=media_type,
                              locator=f"{self.name}:{area}/{sha256}")
            if not self._holds(area, sha256, size):
                private_dir(self.path(area, sha256).parent)
                os.replace(partial, self.path(area, sha256))
        finally:
            partial.unlink(missing_ok=True)
        return ref

    def _fetch_into(self, ref: ArtifactRef, partial: Path) -> None:
        blob = self.path(ref.area, ref.sha256)
        try:
            os.link(blob, partial)
        except FileNotFoundError:
            raise self._missing(ref) from None
        except OSError:  # another file system: copy, hashing what landed
            verify(ref, *copy_hashing(blob, partial, limit=ref.size))
            return
        with open(partial, "rb") as linked:
            size = os.fstat(linked.fileno()).st_size
            verify_size(ref, size)  # before hashing a blob of any size
            verify(ref, hashlib.file_digest(linked, "sha256").hexdigest(), size)

    def _missing(self, ref: ArtifactRef) -> ArtifactMissing:
        return ArtifactMissing(ref, f"the folder store holds no such blob (in "
                                    f"{self.root / ref.area})")

    def _read_into(self, ref: ArtifactRef, sink: VerifyingSink) -> None:
        try:
            blob = open(self.path(ref.area, ref.sha256), "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise self._missing(ref) from None
        with blob:
            buffer = bytearray(CHUNK)
            view = memoryview(buffer)
            while n := blob.readinto(buffer):
                sink.write(view[:n])
