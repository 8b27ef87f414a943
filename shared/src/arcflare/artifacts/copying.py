"""A file copied and hashed in one pass, both at full speed.

The kernel copies chunk after chunk (copy_file_range: no bytes through Python) on one
thread while this one hashes each chunk as it landed in the destination — so the digest is
that of the bytes written, and copying and hashing overlap on two cores instead of taking
turns. Where the kernel cannot copy between the two files, chunks are read and written.
"""
from __future__ import annotations

import hashlib
import mmap
import os
import queue
import threading
from pathlib import Path

CHUNK = 4 << 20


def copy_hashing(source: Path, dest: Path, limit: int | None = None) -> tuple[str, int]:
    """Copy source to dest (created, 0600, must not exist); (sha256 hex, bytes) of what was
    written. With a limit, copying stops after limit + 1 bytes (enough to tell a longer one)."""
    fd = os.open(dest, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    with open(source, "rb") as src, open(fd, "r+b") as dst:
        landed: queue.Queue = queue.Queue(maxsize=4)
        stop = threading.Event()
        copier = threading.Thread(target=_copy, daemon=True,
                                  args=(src.fileno(), dst.fileno(), limit, landed, stop))
        copier.start()
        digest, count = hashlib.sha256(), 0
        try:
            while (item := landed.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                offset, length = item
                # the chunk as it landed, read in place (no copy into Python)
                with mmap.mmap(dst.fileno(), length, offset=offset,
                               access=mmap.ACCESS_READ) as landed_chunk:
                    digest.update(landed_chunk)
                count += length
        finally:
            stop.set()
            while copier.is_alive():  # never leave it blocked on a full queue
                try:
                    landed.get(timeout=0.05)
                except queue.Empty:
                    pass
    return digest.hexdigest(), count


def _copy(src: int, dst: int, limit: int | None, landed: queue.Queue,
          stop: threading.Event) -> None:
    offset = 0
    in_kernel = True
    try:
        while (limit is None or offset <= limit) and not stop.is_set():
            size = CHUNK if limit is None else min(CHUNK, limit + 1 - offset)
            if in_kernel:
                try:
                    n = os.copy_file_range(src, dst, size, offset, offset)
                except OSError:  # another file system, or no support: by hand from here
                    in_kernel = False
                    continue
            else:
                data = os.pread(src, size, offset)
                n = os.pwrite(dst, data, offset) if data else 0
            if n == 0:
                break
            landed.put((offset, n))
            offset += n
    except BaseException as exc:  # noqa: BLE001 - handed to the hashing thread, raised there
        landed.put(exc)
        return
    landed.put(None)
