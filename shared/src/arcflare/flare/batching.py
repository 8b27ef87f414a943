"""Groups metric points per (job, site) over a short window into MetricsReported."""
from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field

from arcflare.contracts.events import MetricPoint, MetricsReported

#: the contract's cap on points per message
MAX_POINTS = 5000


@dataclass
class _Pending:
    opened: float
    points: list[MetricPoint] = field(default_factory=list)


class MetricsBatcher:
    def __init__(self, federation: str, *, window_s: float = 0.5,
                 max_points: int = MAX_POINTS) -> None:
        self.federation = federation
        self.window_s = window_s
        self.max_points = min(max_points, MAX_POINTS)
        self._pending: dict[tuple[str, str], _Pending] = {}
        self._full: list[MetricsReported] = []
        self._lock = threading.Lock()

    def add(self, job_id: str, site: str, points: list[MetricPoint]) -> None:
        with self._lock:
            pending = self._pending.setdefault((job_id, site), _Pending(time.monotonic()))
            pending.points.extend(points)
            if len(pending.points) >= self.max_points:
                self._full.append(self._close((job_id, site)))

    def take(self, *, everything: bool = False) -> list[MetricsReported]:
        """Batches whose window has passed (or all of them)."""
        now = time.monotonic()
        with self._lock:
            ready, self._full = self._full, []
            for key in list(self._pending):
                if everything or now - self._pending[key].opened >= self.window_s:
                    ready.append(self._close(key))
        return [batch for message in ready for batch in self._split(message)]

    def _close(self, key: tuple[str, str]) -> MetricsReported:
        job_id, site = key
        points = self._pending.pop(key).points
        return MetricsReported(federation=self.federation, job_id=job_id, site=site,
                               points=points, batch_id=str(uuid.uuid4()))

    def _split(self, message: MetricsReported) -> list[MetricsReported]:
        if len(message.points) <= self.max_points:
            return [message]
        chunks = [message.points[i:i + self.max_points]
                  for i in range(0, len(message.points), self.max_points)]
        return [message.model_copy(update={"points": c, "batch_id": str(uuid.uuid4())})
                for c in chunks]
