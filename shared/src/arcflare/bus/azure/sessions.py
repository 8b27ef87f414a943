"""A locked Service Bus session as the port's Session.

The session receiver is not supervised like entity receivers: if its connection
fails the session lock is gone with it, so the caller sees SessionLockLost and
accepts a session again. Closing it releases the session and the messages received
through it (Service Bus hands them to the next holder); using the session or settling
those messages afterwards raises SessionLockLost, where the SDK itself would raise a
ValueError ("the handler has already been shutdown"). The adapter bounds how many
sessions are held at once.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

from arcflare.bus.azure.errors import port_errors
from arcflare.bus.azure.receivers import ReceiverSlot
from arcflare.bus.port import BusUnavailable, ReceivedMessage, Session, SessionLockLost
from azure.servicebus import ServiceBusReceiver


class AzureSession(Session):
    def __init__(
        self,
        receiver: ServiceBusReceiver,
        slot: ReceiverSlot,
        *,
        track: Callable[[list, ReceiverSlot], list[ReceivedMessage]],
        on_close: Callable[[], None],
    ) -> None:
        self._receiver = receiver
        self._slot = slot
        self._track = track
        self._on_close = on_close
        self._closed = threading.Event()
        self.session_id = receiver.session.session_id

    def _open(self, what: str) -> None:
        if self._closed.is_set():
            raise SessionLockLost(f"{what} session {self.session_id}: it was closed")

    def receive(self, max_messages: int = 1, max_wait: float = 0.0) -> list[ReceivedMessage]:
        self._open("receiving from")
        try:
            batch = self._slot.receive(max_messages, max_wait)
        except BusUnavailable as exc:  # the connection and with it the session lock are gone
            raise SessionLockLost(f"session {self.session_id}: {exc}") from exc
        return self._track(batch, self._slot)

    def get_state(self) -> bytes | None:
        self._open("reading the state of")
        with port_errors(f"reading the state of session {self.session_id}"):
            state = self._receiver.session.get_state()
        return bytes(state) if state else None

    def set_state(self, state: bytes | None) -> None:
        self._open("writing the state of")
        with port_errors(f"writing the state of session {self.session_id}"):
            self._receiver.session.set_state(state)

    def renew_lock(self) -> datetime:
        self._open("renewing")
        with port_errors(f"renewing the lock of session {self.session_id}"):
            until = self._receiver.session.renew_lock()
        return until if until.tzinfo else until.replace(tzinfo=UTC)

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        try:
            self._slot.close()
        finally:
            self._on_close()
