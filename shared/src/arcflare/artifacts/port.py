"""The artifact store port: bytes in by content, out only as those very bytes.

`put` hashes what it is given and stores it under its sha256 — the same content is
stored once, whoever puts it. `fetch` and `read` accept only a reference of this store,
of the area the caller expects and within the caller's size cap, stream the bytes
through a hash and a byte count, and hand them over only when both match the
reference; a partial download never appears under the destination's name.
Adapters implement four small hooks; everything that checks lives here, once.
"""
from __future__ import annotations

import abc
import hashlib
import io
import os
import uuid
from collections.abc import Collection
from pathlib import Path
from typing import BinaryIO, ClassVar

from arcflare.contracts.artifacts import Area, ArtifactRef
from arcflare.observability.tracing import traced

Source = bytes | Path
#: read and hashed at a time
CHUNK = 1 << 20


class ArtifactError(Exception):
    """An artifact that cannot be used; the message names its reference and the problem."""

    def __init__(self, ref: ArtifactRef | str, problem: str) -> None:
        self.locator = ref.locator if isinstance(ref, ArtifactRef) else ref
        self.problem = problem
        super().__init__(f"artifact {self.locator}: {problem}")


class ArtifactRefused(ArtifactError):
    """Not fetched at all: another store's, another area's, or a media type not wanted."""


class ArtifactTooLarge(ArtifactError):
    """Bigger than the reader's cap (said before a byte is read)."""


class ArtifactMissing(ArtifactError):
    """The store holds no such blob."""


class ArtifactCorrupt(ArtifactError):
    """The stored bytes are not the referenced ones (another hash or another size)."""


class VerifyingSink:
    """Writes bytes on while counting and hashing them; `verify()` says if they were the ref's.

    It stops at the first byte past the reference's size, so a blob bigger than claimed
    costs at most one chunk more than the cap the caller already agreed to."""

    def __init__(self, ref: ArtifactRef, out: BinaryIO) -> None:
        self.ref, self.out = ref, out
        self.count = 0
        self._hash = hashlib.sha256()

    def write(self, chunk: bytes | memoryview) -> None:
        self.count += len(chunk)
        if self.count > self.ref.size:
            raise ArtifactCorrupt(self.ref, f"the store holds more than the referenced "
                                            f"{self.ref.size} bytes")
        self._hash.update(chunk)
        self.out.write(chunk)

    def verify(self) -> None:
        verify(self.ref, self._hash.hexdigest(), self.count)


def verify_size(ref: ArtifactRef, size: int) -> None:
    if size != ref.size:
        raise ArtifactCorrupt(ref, f"the store holds {size} bytes, the reference says {ref.size}")


def verify(ref: ArtifactRef, sha256: str, size: int) -> None:
    """ArtifactCorrupt unless these are the referenced bytes."""
    verify_size(ref, size)
    if sha256 != ref.sha256:
        raise ArtifactCorrupt(ref, f"the stored bytes do not match their sha256 "
                                   f"(they hash to {sha256})")


def digest(source: Source) -> tuple[str, int]:
    """sha256 (hex) and size of bytes or of a file's content."""
    if isinstance(source, bytes):
        return hashlib.sha256(source).hexdigest(), len(source)
    with open(source, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest(), os.fstat(f.fileno()).st_size


class ArtifactStore(abc.ABC):
    """Every store operation is a child span of the handler that asks for it."""

    #: the store's name in locators: `<name>:<area>/<sha256>`
    name: ClassVar[str]

    # --- what every caller uses ---------------------------------------------------
    @traced("artifact put")
    def put(self, source: Source, media_type: str, *, area: Area) -> ArtifactRef:
        """Store bytes (or a file's content) unless already there; their reference."""
        return self._put(source, media_type, area=area)

    def _put(self, source: Source, media_type: str, *, area: Area) -> ArtifactRef:
        """Hash, then write unless held; an adapter may do it in fewer passes."""
        ref = self.reference(source, media_type, area=area)
        if not self._holds(area, ref.sha256, ref.size):
            self._write(area, ref.sha256, source, ref.size, media_type)
        return ref

    def reference(self, source: Source, media_type: str, *, area: Area) -> ArtifactRef:
        """The reference `put` would give these bytes, without storing them."""
        sha256, size = digest(source)
        return ArtifactRef(sha256=sha256, size=size, media_type=media_type,
                           locator=f"{self.name}:{area}/{sha256}")

    @traced("artifact fetch")
    def fetch(self, ref: ArtifactRef, dest: Path, *, area: Area, max_bytes: int,
              media_types: Collection[str] | None = None) -> Path:
        """The referenced bytes, verified, as the file `dest` (replaced if it exists)."""
        self.check(ref, area=area, max_bytes=max_bytes, media_types=media_types)
        dest = Path(dest)
        partial = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.partial")
        try:
            self._fetch_into(ref, partial)
            os.replace(partial, dest)
        finally:
            partial.unlink(missing_ok=True)
        return dest

    @traced("artifact read")
    def read(self, ref: ArtifactRef, *, area: Area, max_bytes: int,
             media_types: Collection[str] | None = None) -> bytes:
        """The referenced bytes, verified, in memory (for small artifacts)."""
        self.check(ref, area=area, max_bytes=max_bytes, media_types=media_types)
        out = io.BytesIO()
        self._receive(ref, out)
        return out.getvalue()

    def exists(self, ref: ArtifactRef) -> bool:
        """True when this store holds a blob of the reference's hash and size."""
        return ref.store == self.name and self._holds(ref.area, ref.sha256, ref.size)

    @traced("artifact delete")
    def delete(self, ref: ArtifactRef) -> None:
        """Remove the blob (a removed site's kit: its keys go with it); no error when absent.
        Content-addressed: whoever put the same bytes loses them too."""
        if ref.store == self.name:
            self._delete(ref.area, ref.sha256)

    def check(self, ref: ArtifactRef, *, area: Area, max_bytes: int,
              media_types: Collection[str] | None = None) -> None:
        """Refuse, before any byte moves, what this reader must not fetch."""
        if ref.store != self.name:
            raise ArtifactRefused(ref, f"it is in a {ref.store!r} store, but this process uses "
                                       f"the {self.name!r} store (ARCFLARE_ARTIFACT_STORE); "
                                       "every process of a deployment must share one store")
        if ref.area != area:
            raise ArtifactRefused(ref, f"it is in the store's {ref.area!r} area; only "
                                       f"{area!r} is read here")
        if media_types and ref.media_type not in media_types:
            raise ArtifactRefused(ref, f"media type {ref.media_type!r} is not one of "
                                       f"{', '.join(sorted(media_types))}")
        if ref.size > max_bytes:
            raise ArtifactTooLarge(ref, f"{ref.size} bytes is more than the cap of "
                                        f"{max_bytes} bytes")

    def _fetch_into(self, ref: ArtifactRef, partial: Path) -> None:
        """The verified bytes as the new file `partial`; an adapter may do it faster."""
        with open(partial, "xb") as out:
            self._receive(ref, out)

    def _receive(self, ref: ArtifactRef, out: BinaryIO) -> None:
        sink = VerifyingSink(ref, out)
        self._read_into(ref, sink)
        sink.verify()

    # --- what an adapter implements --------------------------------------------------
    @abc.abstractmethod
    def _holds(self, area: str, sha256: str, size: int) -> bool:
        """A blob of this name and size is stored (a wrong-sized one is rewritten)."""

    @abc.abstractmethod
    def _write(self, area: str, sha256: str, source: Source, size: int,
               media_type: str) -> None:
        """Store the bytes under their hash; readers never see a partial blob."""

    @abc.abstractmethod
    def _delete(self, area: str, sha256: str) -> None:
        """Remove the blob if there is one."""

    @abc.abstractmethod
    def _read_into(self, ref: ArtifactRef, sink: VerifyingSink) -> None:
        """Stream the blob named by ref.area and ref.sha256 into the sink, chunk by chunk;
        ArtifactMissing when there is none."""
