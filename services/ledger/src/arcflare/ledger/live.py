"""Live updates: what the ledger just projected, pushed to browsers as Server-Sent Events.

The consumer threads announce each event once its transaction has committed (so a reader
that re-reads on a change sees it); each open stream collects announcements and sends them
in batches, at most one per interval, naming what changed — federation, site, job, event
type — and never the data itself: the page re-reads the JSON it shows, through the same
access checks as any other read.
"""
from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass

from arcflare.contracts import events as e
from arcflare.contracts.envelope import Envelope
from arcflare.ledger.access import Reader

#: a comment line this often keeps proxies from closing an idle stream
KEEPALIVE_S = 15.0
#: changes a slow browser may fall behind by; past it, it is told to re-read everything
BACKLOG = 2000


@dataclass(frozen=True)
class Change:
    type: str
    federation: str | None
    site: str | None = None
    job_id: str | None = None
    telemetry: bool = False

    @classmethod
    def of(cls, envelope: Envelope) -> Change:
        payload = envelope.payload or {}
        return cls(type=envelope.type,
                   federation=envelope.federation or payload.get("federation"),
                   site=envelope.site or payload.get("site"),
                   job_id=payload.get("job_id"),
                   telemetry=envelope.type in _TELEMETRY)


_TELEMETRY = frozenset(t.__name__ for t in (e.SiteHeartbeat, e.SiteLogTail, e.MetricsReported,
                                            e.FlareEventObserved))


class Subscription:
    """One open stream's inbox; filled from any thread, read on the server's event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._wake = asyncio.Event()
        self._lock = threading.Lock()
        self._pending: dict[Change, None] = {}  # ordered and without duplicates
        self.overflowed = False
        self.closed = False

    def offer(self, change: Change) -> None:
        with self._lock:
            if len(self._pending) >= BACKLOG:
                self.overflowed = True
            else:
                self._pending[change] = None
        self._loop.call_soon_threadsafe(self._wake.set)

    def close(self) -> None:
        self.closed = True
        self._loop.call_soon_threadsafe(self._wake.set)

    async def next_batch(self, timeout: float) -> tuple[list[Change], bool]:
        """The changes since the last batch and whether some were lost; ([], False) after
        `timeout` with nothing new."""
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except TimeoutError:
            return [], False
        self._wake.clear()
        with self._lock:
            batch, self._pending = list(self._pending), {}
            overflowed, self.overflowed = self.overflowed, False
        return batch, overflowed


class LiveFeed:
    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self._lock = threading.Lock()

    def announce(self, change: Change) -> None:
        with self._lock:
            subscriptions = list(self._subscriptions)
        for subscription in subscriptions:
            try:
                subscription.offer(change)
            except RuntimeError:  # its event loop is gone: the server stopped
                self.unsubscribe(subscription)

    def subscribe(self, loop: asyncio.AbstractEventLoop) -> Subscription:
        subscription = Subscription(loop)
        with self._lock:
            self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions.discard(subscription)

    def close(self) -> None:
        """Ends every open stream (the server is stopping)."""
        with self._lock:
            subscriptions, self._subscriptions = list(self._subscriptions), set()
        for subscription in subscriptions:
            try:
                subscription.close()
            except RuntimeError:
                pass

    @property
    def listeners(self) -> int:
        with self._lock:
            return len(self._subscriptions)


def sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def stream(feed: LiveFeed, reader: Callable[[], Awaitable[Reader]], interval_s: float,
                 disconnected: Callable[[], Awaitable[bool]]) -> AsyncIterator[str]:
    """The text/event-stream body: `changes` events with what changed, `resync` when changes
    were lost. `reader` is asked again when a federation is (re)provisioned, since that may
    change who reads it."""
    subscription = feed.subscribe(asyncio.get_running_loop())
    allowed = await reader()
    try:
        yield "retry: 2000\n\n" + sse("hello", {"reader": allowed.name})
        while not subscription.closed:
            batch, overflowed = await subscription.next_batch(KEEPALIVE_S)
            if await disconnected():
                return
            if overflowed:
                yield sse("resync", {})
            if any(c.type == "FederationProvisioned" for c in batch):
                allowed = await reader()
            visible = [asdict(c) for c in batch if allowed.may_read(c.federation)]
            if visible:
                yield sse("changes", visible)
            elif not batch and not overflowed and not subscription.closed:
                yield ": keepalive\n\n"
            await asyncio.sleep(interval_s)  # what arrives meanwhile goes in the next batch
    finally:
        feed.unsubscribe(subscription)
