"""Delivers the bridge's telemetry to the bus without ever making training wait.

`offer()` only appends to a bounded in-memory buffer (or, when that is full,
to the spool file). A background thread sends in batches; when the bus fails,
the batch goes to the spool and the thread backs off; spooled messages are
replayed, oldest first, before anything new once the bus answers again.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from arcflare.bus import codec
from arcflare.bus.port import Bus
from arcflare.contracts.envelope import Envelope
from arcflare.flare.spool import Spool
from arcflare.trust.jws import Signer

# stdlib logging, not structlog: this runs inside the NVFlare server's job process, whose
# logging configuration (the job's log.txt, log.json) is NVFlare's. The bridge passes its
# component logger, which NVFlare configures (a module-level logger created before
# NVFlare's dictConfig would be disabled by it).
_default_log = logging.getLogger("arcflare.flare.sender")

TELEMETRY_TOPIC = "telemetry"


class TelemetrySender:
    def __init__(
        self,
        connect: Callable[[], Bus],
        spool: Spool,
        *,
        signer: Signer,
        collect: Callable[[bool], list[Envelope]] = lambda everything: [],
        capacity: int = 10_000,
        max_batch: int = 50,
        tick_s: float = 0.1,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 10.0,
        log: logging.Logger | None = None,
    ) -> None:
        self._log = log or _default_log
        self._connect = connect
        self._signer = signer
        self._spool = spool
        self._collect = collect
        self._buffer: deque[Envelope] = deque()
        self._capacity = capacity
        self._max_batch = max_batch
        self._tick_s = tick_s
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._retry_s = 0.0
        self._bus: Bus | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._sending = False
        self._in_flight: list[Envelope] = []
        self.sent = 0

    # --- called from NVFlare's threads: never waits on the bus ---------------
    def offer(self, envelope: Envelope) -> None:
        with self._lock:
            if len(self._buffer) < self._capacity:
                self._buffer.append(envelope)
                return
        # The buffer is full (bus slow or down): a local disk write, never the network.
        self._spool.put([envelope])

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="arcflare-bridge-sender",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> int:
        """Try to deliver everything within timeout; spool the rest. Returns how many wait
        in the spool for the next bridge of this federation to replay."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                # Still stuck in a send: keep its batch too (a duplicate is harmless,
                # the relay and the bus both de-duplicate; a loss is not).
                self._spill(list(self._in_flight))
        self._spill(self._take_all())
        if self._bus is not None:
            self._close_bus()
        return len(self._spool)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def flush(self, timeout: float) -> bool:
        """Wait until nothing is buffered or spooled (tests and END_RUN)."""
        for envelope in self._collect(True):
            self.offer(envelope)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                idle = not self._buffer and not self._sending
            if idle and len(self._spool) == 0:
                return True
            self._wake.set()
            time.sleep(self._tick_s)
        return False

    # --- the sender thread -----------------------------------------------------
    def _run(self) -> None:
        while True:
            stopping = self._stopping.is_set()
            for envelope in self._collect(stopping):
                self.offer(envelope)
            try:
                delivered = self._replay_spool() and self._send_buffered()
            except Exception as exc:  # noqa: BLE001 (any bus failure: spool and back off)
                self._bus_failed(exc)
                delivered = False
            if stopping:  # one last attempt; stop() spools whatever is left
                return
            self._wake.wait(self._retry_s if not delivered else self._tick_s)
            self._wake.clear()

    def _replay_spool(self) -> bool:
        while batch := self._spool.peek(self._max_batch):
            self._send([e for _, e in batch])
            self._spool.remove([seq for seq, _ in batch])
            self._log.info("replayed %d spooled telemetry message(s) to the bus; %d left",
                     len(batch), len(self._spool))
        return True

    def _send_buffered(self) -> bool:
        while batch := self._take(self._max_batch):
            self._in_flight = batch
            try:
                self._send(batch)
            except Exception:
                self._spill(batch)
                raise
            finally:
                self._in_flight = []
        return True

    def _send(self, envelopes: list[Envelope]) -> None:
        if self._bus is None:
            self._bus = self._connect()
        # signed as they leave (spooled envelopes wait unsigned: the key never hits the spool)
        self._bus.send(TELEMETRY_TOPIC,
                       codec.to_outgoing_batch(envelopes, signer=self._signer))
        self.sent += len(envelopes)
        self._retry_s = 0.0

    def _bus_failed(self, exc: Exception) -> None:
        self._retry_s = min(self._retry_max_s, max(self._retry_initial_s, self._retry_s * 2))
        self._log.warning("bus unavailable (%s): %d message(s) spooled, retrying in %.1f s",
                    exc, len(self._spool), self._retry_s)
        self._close_bus()

    def _close_bus(self) -> None:
        bus, self._bus = self._bus, None
        if bus is not None:
            try:
                bus.close()
            except Exception as exc:  # noqa: BLE001 (a broken connection may fail to close)
                self._log.debug("closing the broken bus connection failed: %s", exc)

    def _spill(self, envelopes: list[Envelope]) -> None:
        if envelopes:
            self._spool.put(envelopes)

    def _take(self, limit: int) -> list[Envelope]:
        with self._lock:
            batch = [self._buffer.popleft() for _ in range(min(limit, len(self._buffer)))]
            self._sending = bool(batch)
            return batch

    def _take_all(self) -> list[Envelope]:
        return self._take(len(self._buffer)) + list(self._collect(True))
