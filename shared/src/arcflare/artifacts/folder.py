"""The folder artifact store: blobs as files under <root>/<area>/<ab>/<sha256>.

The local default (<data_dir>/artifacts): only processes that see this folder can
share it, which is every process of `arcflare local up`. Each area is a folder of its
own, 0700, and every blob 0600, so startup kits (private keys) sit apart from packages
and results and are their owner's alone. A blob is written to a temporary name in its
folder and renamed into place: it is complete or absent, and never changed after.
"""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from arcflare.artifacts.port import CHUNK, ArtifactMissing, ArtifactStore, Source, VerifyingSink
from arcflare.contracts.artifacts import ArtifactRef
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

    def _read_into(self, ref: ArtifactRef, sink: VerifyingSink) -> None:
        try:
            blob = open(self.path(ref.area, ref.sha256), "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise ArtifactMissing(ref, f"the folder store holds no such blob (in "
                                       f"{self.root / ref.area})") from None
        with blob:
            buffer = bytearray(CHUNK)
            view = memoryview(buffer)
            while n := blob.readinto(buffer):
                sink.write(view[:n])
