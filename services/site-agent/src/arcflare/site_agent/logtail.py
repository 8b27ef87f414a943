"""Bounded reading of NVFlare log files: the last N lines, and new lines since last time.

Log files are untrusted input: they may be missing, rotated, unreadable, binary,
or hold a multi-megabyte line. Reads are capped in bytes, lines are cut to a
maximum length, and undecodable bytes and control characters are replaced.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

MAX_LINE_CHARS = 2000
#: never read more than this from the end of a file for one tail
MAX_SCAN_BYTES = 1024 * 1024
_BLOCK = 64 * 1024
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class Tail:
    lines: list[str]
    #: fewer lines than asked because of a byte or line-length cap
    truncated: bool = False


def clean_line(raw: bytes) -> tuple[str, bool]:
    """A printable, length-capped line from raw bytes; True when it was cut."""
    text = raw.decode("utf-8", errors="replace").rstrip("\r")
    text = _CONTROL.sub("\ufffd", text)
    if len(text) > MAX_LINE_CHARS:
        return text[:MAX_LINE_CHARS] + f" …[{len(text) - MAX_LINE_CHARS} more characters]", True
    return text, False


def read_last_lines(path: Path, lines: int, *, max_scan: int = MAX_SCAN_BYTES) -> Tail:
    """The last `lines` lines of a file, reading at most max_scan bytes from its end.

    Raises OSError (FileNotFoundError, PermissionError...) for the caller to report.
    """
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        start, data = size, b""
        # backwards in blocks until the window holds enough lines (or the scan cap)
        while start > 0 and size - start < max_scan and data.count(b"\n") <= lines:
            step = min(_BLOCK, start, max_scan - (size - start))
            start -= step
            f.seek(start)
            data = f.read(step) + data
    chunks = data.split(b"\n")
    if chunks and chunks[-1] == b"":
        chunks.pop()
    cut_at_start = start > 0
    if cut_at_start and chunks:
        chunks.pop(0)  # a partial first line
    truncated = cut_at_start and len(chunks) < lines and size - start >= max_scan
    picked = chunks[-lines:]
    out: list[str] = []
    for raw in picked:
        line, cut = clean_line(raw)
        truncated = truncated or cut
        out.append(line)
    return Tail(out, truncated)


class LogFollower:
    """New complete lines appended to one file since the previous call.

    Rotation (a new inode, or a file shorter than what was read) restarts from
    the top; a burst larger than max_read skips to its last max_read bytes.
    """

    def __init__(self, path: Path, *, initial_bytes: int = 64 * 1024,
                 max_read: int = 256 * 1024) -> None:
        self.path = path
        self._initial = initial_bytes
        self._max_read = max_read
        self._inode: int | None = None
        self._offset = 0
        self._partial = b""
        self._discard_first = False

    def read_new(self) -> list[str]:
        try:
            with open(self.path, "rb") as f:
                stat = os.fstat(f.fileno())
                start = self._start_offset(stat.st_ino, stat.st_size)
                f.seek(start)
                data = f.read(stat.st_size - start)
        except OSError:
            self._inode = None
            return []
        self._offset = start + len(data)
        data = self._partial + data
        *complete, self._partial = data.split(b"\n")
        if self._discard_first and complete:
            complete.pop(0)  # we started reading mid-line
        self._discard_first = False
        if len(self._partial) > self._max_read:
            self._partial = b""  # a runaway line: drop it rather than grow forever
        return [clean_line(raw)[0] for raw in complete]

    def _start_offset(self, inode: int, size: int) -> int:
        if self._inode is None:
            self._inode = inode
            self._partial = b""
            start = max(0, size - self._initial)
            self._discard_first = start > 0
        elif inode != self._inode or size < self._offset:
            self._inode = inode
            self._partial = b""
            start = 0
        else:
            start = self._offset
        if size - start > self._max_read:
            self._partial = b""
            start = size - self._max_read
            self._discard_first = True
        return start
