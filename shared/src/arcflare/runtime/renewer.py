"""Keeps message and session locks alive while handlers run (like AutoLockRenewer)."""
from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from arcflare.bus.port import Bus, BusError, ReceivedMessage, Session
from arcflare.observability.metrics import lock_renewed
from arcflare.runtime.logging import get_logger

log = get_logger("arcflare.runtime.renewer")


class LockRenewer:
    def __init__(self, bus: Bus, tick: float = 0.5, service: str = "") -> None:
        self.bus = bus
        self.service = service
        self.tick = tick
        self._items: dict[int, tuple[object, float]] = {}
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lock-renewer", daemon=True)
        self._thread.start()

    def hold(self, item: ReceivedMessage | Session, locked_until: datetime | None) -> None:
        if locked_until is None:
            return
        span = max(1.0, (locked_until - datetime.now(UTC)).total_seconds())
        with self._guard:
            self._items[id(item)] = (item, span)

    def release(self, item: object) -> None:
        with self._guard:
            self._items.pop(id(item), None)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        due: dict[int, datetime] = {}
        while not self._stop.wait(self.tick):
            now = datetime.now(UTC)
            with self._guard:
                items = dict(self._items)
            for key in list(due):
                if key not in items:
                    del due[key]
            for key, (item, span) in items.items():
                # renew at half the lock's span, as the SDK's AutoLockRenewer does
                due.setdefault(key, _after(now, span / 2))
                if now < due[key]:
                    continue
                kind = "session" if isinstance(item, Session) else "message"
                try:
                    if isinstance(item, Session):
                        item.renew_lock()
                    else:
                        self.bus.renew_lock(item)  # type: ignore[arg-type]
                    due[key] = _after(now, span / 2)
                    lock_renewed(self.service, kind, ok=True)
                except BusError as exc:
                    log.warning("lock renewal failed", error=repr(exc))
                    lock_renewed(self.service, kind, ok=False)
                    self.release(item)


def _after(now: datetime, seconds: float) -> datetime:
    return now + timedelta(seconds=seconds)
