"""Telemetry straight to the bus, never through the outbox: when the bus is away,
heartbeats must not queue up. One slot per kind: the latest state wins."""
from __future__ import annotations

import threading

from arcflare.bus.codec import to_outgoing
from arcflare.bus.port import Bus
from arcflare.contracts.base import Telemetry
from arcflare.contracts.envelope import Envelope
from arcflare.runtime import get_logger
from arcflare.trust.jws import Signer

log = get_logger(__name__)


class TelemetrySender:
    def __init__(self, bus: Bus, *, signer: Signer) -> None:
        self.bus = bus
        self.signer = signer
        self._pending: dict[str, Envelope] = {}
        self._lock = threading.Lock()
        self.failures = 0

    def offer(self, message: Telemetry, *, slot: str | None = None) -> bool:
        """Send now; if the bus is unreachable keep only this, the newest per slot,
        for the next call. Returns True when everything pending went out."""
        envelope = Envelope.wrap(message)
        with self._lock:
            self._pending[slot or message.type_name()] = envelope
            for key, pending in list(self._pending.items()):
                try:
                    self.bus.send(message.channel, [to_outgoing(pending, signer=self.signer)])
                except Exception as exc:  # noqa: BLE001 (whatever the bus raises, the agent goes on)
                    self.failures += 1
                    log.warning("telemetry not sent; keeping only the latest",
                                type=pending.type, error=repr(exc))
                    return False
                del self._pending[key]
        return True

    def pending(self) -> int:
        return len(self._pending)
