"""Times as people read them: "12 s ago", "3 min ago", "0.3 s", "2 min 5 s"."""
from __future__ import annotations

from datetime import UTC, datetime


def parse(timestamp: str | None) -> datetime | None:
    if not timestamp:
        return None
    moment = datetime.fromisoformat(timestamp)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def span(seconds: float) -> str:
    """A duration, coarser as it grows: 0.3 s, 25.3 s, 2 min 5 s, 3 h 10 min, 4 d."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs and minutes < 10 else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} d"


def age(timestamp: str | None, as_of: datetime) -> str:
    """How long before `as_of` a moment was: "12 s ago", "3 min ago"; "-" for never."""
    moment = parse(timestamp)
    if moment is None:
        return "-"
    seconds = (as_of - moment).total_seconds()
    if seconds < -1:  # a sender's clock ahead of the reader's
        return f"in {_coarse(-seconds)}"
    return f"{_coarse(max(seconds, 0))} ago"


def _coarse(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"
