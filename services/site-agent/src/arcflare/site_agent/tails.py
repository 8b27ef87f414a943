"""Turning raw log lines into what may leave the site: redacted, ≤ 200 lines, ≤ 64 KiB."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from arcflare.site_agent.redaction import FollowedLog, Redactor

MAX_LINES = 200
MAX_BYTES = 64 * 1024
#: room left in MAX_BYTES for the rest of the SiteLogTail payload (names, flags)
_ENVELOPE_ROOM = 1024


@dataclass(frozen=True)
class SafeTail:
    lines: list[str]
    truncated: bool
    redacted_count: int


def make_safe(lines: list[str], redactor: Redactor | FollowedLog, *,
              truncated: bool = False) -> SafeTail:
    """Redact first (a secret cut in half by a cap must not survive), then cap."""
    clean, count = redactor.redact_lines(lines)
    if len(clean) > MAX_LINES:
        clean, truncated = clean[-MAX_LINES:], True
    # the JSON-encoded size is what travels; drop the oldest lines until it fits
    size = sum(_json_size(line) for line in clean)
    while clean and size > MAX_BYTES - _ENVELOPE_ROOM:
        size -= _json_size(clean.pop(0))
        truncated = True
    return SafeTail(clean, truncated, count)


def _json_size(line: str) -> int:
    """Bytes the line takes in the JSON body: quotes, comma, escaped quotes and
    backslashes (control characters were replaced when the line was read)."""
    return len(line.encode()) + line.count('"') + line.count("\\") + 3


class RateLimit:
    """A token bucket: `per_minute` tails, at most `burst` back to back."""

    def __init__(self, per_minute: int, burst: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(burst or max(1, min(per_minute, 3)))
        self.clock = clock
        self._tokens = self.capacity
        self._at = clock()
        self._lock = threading.Lock()

    def try_acquire(self) -> float:
        """0.0 when allowed, else the seconds to wait before the next one is."""
        with self._lock:
            now = self.clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return 0.0
            return (1.0 - self._tokens) / self.rate
