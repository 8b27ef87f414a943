"""One supervised SDK receiver per entity, and the settlement of what it received.

Supervision: after a connection-class error the receiver is closed and rebuilt on
the next receive (its unsettled messages come back when their locks expire; the
runtime's inbox makes that harmless). A watchdog rebuilds it too when it has
returned nothing for `stall_after_s` while the entity holds a message older than
that — the SDK's known failure is a receiver that goes quiet after an AMQP error,
logging only at INFO.

Locks: the SDK's sync receiver is not thread-safe, and 7.15 settlement waits for
the broker's echo. Receiving and settling take different locks, so a handler never
waits behind a long receive; settlements on one link are serialised because the
link's table of awaited outcomes is a plain dict (read from the SDK source), while
settlements on different receivers — sessions, subscriptions — run in parallel.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from arcflare.bus.azure.errors import CONNECTION_ERRORS, port_errors, to_port_error
from arcflare.bus.port import MessageLockLost, SessionLockLost
from arcflare.runtime.logging import get_logger
from azure.servicebus import ServiceBusReceivedMessage, ServiceBusReceiver

log = get_logger("arcflare.bus.azure")


class ReceiverSlot:
    def __init__(
        self,
        entity_path: str,
        open_receiver: Callable[[], ServiceBusReceiver],
        *,
        stall_after_s: float,
        min_wait_s: float,
        supervised: bool = True,
    ) -> None:
        self.entity_path = entity_path
        #: a session receiver: its messages' locks are the session's
        self.is_session = False
        self._open_receiver = open_receiver
        self._stall_after_s = stall_after_s
        self._min_wait_s = min_wait_s
        self._supervised = supervised
        self._receiver: ServiceBusReceiver | None = None
        self.generation = 0
        self.rebuilds = 0
        self._receive_lock = threading.Lock()
        self._settle_lock = threading.Lock()
        self._open_lock = threading.Lock()
        self._last_progress = time.monotonic()

    # --- receiving ------------------------------------------------------------------
    def receiver(self) -> ServiceBusReceiver:
        with self._open_lock:  # a peek and a receive may both find it missing
            if self._receiver is None:
                with port_errors(f"opening a receiver on {self.entity_path}"):
                    self._receiver = self._open_receiver()
                self.generation += 1
                self._last_progress = time.monotonic()
            return self._receiver

    def receive(self, max_messages: int, max_wait: float) -> list[ServiceBusReceivedMessage]:
        with self._receive_lock:
            receiver = self.receiver()
            try:
                batch = receiver.receive_messages(
                    max_message_count=max_messages, max_wait_time=max(max_wait, self._min_wait_s)
                )
            except CONNECTION_ERRORS as exc:
                if not self._supervised:
                    raise to_port_error(exc, f"receiving from {self.entity_path}") from exc
                log.warning("receiver failed; rebuilding it", entity=self.entity_path,
                            error=repr(exc))
                self._rebuild_locked()
                return []
            except Exception as exc:
                raise to_port_error(exc, f"receiving from {self.entity_path}") from exc
            if batch:
                self._last_progress = time.monotonic()
            elif self._supervised and self._stalled(receiver):
                log.warning("receiver made no progress while messages wait; rebuilding it",
                            entity=self.entity_path, idle_s=round(self._idle_s(), 1))
                self._rebuild_locked()
            return batch

    def _idle_s(self) -> float:
        return time.monotonic() - self._last_progress

    def _stalled(self, receiver: ServiceBusReceiver) -> bool:
        if self._idle_s() < self._stall_after_s:
            return False
        try:
            waiting = receiver.peek_messages(max_message_count=1, sequence_number=1)
        except Exception as exc:  # noqa: BLE001 - a failing peek is itself a reason to rebuild
            log.info("watchdog peek failed", entity=self.entity_path, error=repr(exc))
            return True
        if not waiting:
            self._last_progress = time.monotonic()
            return False
        enqueued = waiting[0].enqueued_time_utc
        if enqueued is None:
            return True
        enqueued = enqueued if enqueued.tzinfo else enqueued.replace(tzinfo=UTC)
        return (datetime.now(UTC) - enqueued).total_seconds() >= self._stall_after_s

    def rebuild(self) -> None:
        with self._receive_lock:
            self._rebuild_locked()

    def _rebuild_locked(self) -> None:
        receiver, self._receiver = self._receiver, None
        self.rebuilds += 1
        if receiver is not None:
            try:
                receiver.close()
            except Exception as exc:  # noqa: BLE001 - closing a broken link may fail too
                log.info("closing a failed receiver raised", entity=self.entity_path,
                         error=repr(exc))

    # --- settling --------------------------------------------------------------------
    def settle(self, generation: int, what: str, action: Callable[[ServiceBusReceiver], None]) -> None:
        """Run a settlement on the receiver that delivered the message."""
        receiver = self._receiver
        if receiver is None or generation != self.generation:
            if self.is_session:
                # Service Bus released the session, and its messages with it, on close
                raise SessionLockLost(f"{what}: the session it came through was closed")
            raise MessageLockLost(
                f"{what}: the receiver that delivered it was rebuilt; the message returns "
                "when its lock expires"
            )
        with self._settle_lock, port_errors(what):
            action(receiver)

    def session_locked_until(self, what: str) -> datetime:
        """A session's messages are locked as long as the session: until when that is."""
        receiver = self._receiver
        until = receiver.session.locked_until_utc if receiver is not None else None
        if until is not None and until.tzinfo is None:
            until = until.replace(tzinfo=UTC)
        if until is None or until <= datetime.now(UTC):
            raise SessionLockLost(f"{what}: the session it came through was closed or its "
                                  "lock expired")
        return until

    def close(self) -> None:
        with self._receive_lock:
            receiver, self._receiver = self._receiver, None
        if receiver is not None:
            with port_errors(f"closing the receiver on {self.entity_path}"):
                receiver.close()
