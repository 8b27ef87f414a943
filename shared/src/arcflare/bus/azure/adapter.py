"""The Bus port on Azure Service Bus (azure-servicebus 7.15, sync API).

One ServiceBusClient; a sender per entity (each with its own connection, as the
SDK does not share them); a supervised receiver per entity/subscription/sub-queue
(receivers.py); session receivers bounded by `max_concurrent_sessions`. Received
messages are remembered by lock token, so `complete(received)` settles on the
very receiver that delivered it; AutoLockRenewer keeps their locks while handlers
run (up to `max_lock_renewal_s`).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from arcflare.bus.azure.config import AzureBusOptions
from arcflare.bus.azure.errors import port_errors, to_port_error
from arcflare.bus.azure.mapping import from_service_bus, to_service_bus
from arcflare.bus.azure.receivers import ReceiverSlot, log
from arcflare.bus.azure.senders import SenderPool
from arcflare.bus.azure.sessions import AzureSession
from arcflare.bus.port import (
    Bus,
    EntityStats,
    MessageLockLost,
    OutgoingMessage,
    ReceivedMessage,
    Session,
    SubQueue,
    entity_path,
)
from arcflare.contracts.topology import Rule
from azure.servicebus import (
    NEXT_AVAILABLE_SESSION,
    AutoLockRenewer,
    ServiceBusClient,
    ServiceBusReceivedMessage,
    ServiceBusReceiveMode,
    ServiceBusSubQueue,
)
from azure.servicebus import exceptions as sb


@dataclass
class _Inflight:
    message: ServiceBusReceivedMessage
    slot: ReceiverSlot
    generation: int
    tracked_at: float


class AzureServiceBus(Bus):
    def __init__(self, options: AzureBusOptions, *, credential: Any = None) -> None:
        options.validate()
        self.options = options
        if options.connection_string:
            self._client = ServiceBusClient.from_connection_string(
                options.connection_string, **options.client_kwargs())
        else:
            if credential is None:
                from azure.identity import DefaultAzureCredential

                credential = DefaultAzureCredential()
            self._client = ServiceBusClient(options.namespace, credential,
                                            **options.client_kwargs())
        self._credential = credential
        self._guard = threading.Lock()
        self._senders = SenderPool(self._client)
        self._slots: dict[tuple[str, str | None, SubQueue], ReceiverSlot] = {}
        self._inflight: dict[str, _Inflight] = {}
        self._sessions = threading.BoundedSemaphore(options.max_concurrent_sessions)
        # AutoLockRenewer keeps one worker busy per registered message or session
        self._renewer = AutoLockRenewer(max_lock_renewal_duration=options.max_lock_renewal_s,
                                        max_workers=options.max_lock_renewers)

    @classmethod
    def from_settings(cls, settings: Any) -> AzureServiceBus:
        return cls(AzureBusOptions.from_settings(settings))

    # --- sending --------------------------------------------------------------------
    def send(self, entity: str, messages: Sequence[OutgoingMessage]) -> None:
        if messages:
            self._senders.send(entity, [to_service_bus(m) for m in messages])

    def schedule(self, entity: str, message: OutgoingMessage, enqueue_at: datetime) -> int:
        return self._senders.schedule(entity, to_service_bus(message), enqueue_at)

    def cancel_scheduled(self, entity: str, sequence_number: int) -> None:
        self._senders.cancel(entity, sequence_number)

    # --- receiving --------------------------------------------------------------------
    def _open_receiver(self, entity: str, subscription: str | None, sub_queue: SubQueue,
                       **kwargs: Any):
        if sub_queue is SubQueue.DEAD_LETTER:
            kwargs["sub_queue"] = ServiceBusSubQueue.DEAD_LETTER
        kwargs.setdefault("receive_mode", ServiceBusReceiveMode.PEEK_LOCK)
        if subscription:
            receiver = self._client.get_subscription_receiver(entity, subscription, **kwargs)
        else:
            receiver = self._client.get_queue_receiver(entity, **kwargs)
        receiver.__enter__()  # attach now: a missing entity fails here, at start
        return receiver

    def _slot(self, entity: str, subscription: str | None, sub_queue: SubQueue) -> ReceiverSlot:
        key = (entity, subscription, sub_queue)
        with self._guard:
            if key not in self._slots:
                self._slots[key] = ReceiverSlot(
                    entity_path(entity, subscription),
                    lambda: self._open_receiver(entity, subscription, sub_queue),
                    stall_after_s=self.options.stall_after_s,
                    min_wait_s=self.options.min_receive_wait_s,
                )
            return self._slots[key]

    def receive(self, entity: str, subscription: str | None = None, *, max_messages: int = 1,
                max_wait: float = 0.0, sub_queue: SubQueue = SubQueue.ACTIVE,
                ) -> list[ReceivedMessage]:
        slot = self._slot(entity, subscription, sub_queue)
        return self._track(slot.receive(max_messages, max_wait), slot)

    def _track(self, batch: list[ServiceBusReceivedMessage], slot: ReceiverSlot,
               ) -> list[ReceivedMessage]:
        received = []
        now = time.monotonic()
        with self._guard:
            self._forget_expired(now)
            for message in batch:
                mapped = from_service_bus(message, slot.entity_path)
                if mapped.lock_token:
                    self._inflight[mapped.lock_token] = _Inflight(message, slot, slot.generation,
                                                                  now)
                received.append(mapped)
        for message in batch:
            if not slot.is_session:
                try:
                    self._renewer.register(slot.receiver(), message)
                except Exception as exc:  # noqa: BLE001 - renewal is best effort
                    log.info("lock renewal not registered", error=repr(exc))
        return received

    def _forget_expired(self, now: float) -> None:
        horizon = self.options.max_lock_renewal_s + 600
        for token in [t for t, i in self._inflight.items() if now - i.tracked_at > horizon]:
            del self._inflight[token]

    def accept_session(self, entity: str, subscription: str | None = None, *,
                       session_id: str | None = None, max_wait: float = 0.0) -> Session | None:
        wait = max(max_wait, self.options.min_receive_wait_s)
        if not self._sessions.acquire(timeout=wait):
            return None  # as many sessions as allowed are held already
        try:
            receiver = self._open_receiver(
                entity, subscription, SubQueue.ACTIVE,
                session_id=session_id if session_id else NEXT_AVAILABLE_SESSION,
                max_wait_time=wait)
        except (sb.OperationTimeoutError, sb.SessionCannotBeLockedError,
                sb.ServiceBusConnectionError) as exc:
            self._sessions.release()
            log.debug("no session to accept", entity=entity, error=type(exc).__name__)
            return None
        except Exception as exc:
            self._sessions.release()
            raise to_port_error(
                exc, f"accepting a session on {entity_path(entity, subscription)}") from exc
        if not isinstance(receiver.session.session_id, str):
            # the broker attached and detached at once (com.microsoft:timeout): no session
            self._sessions.release()
            with port_errors("closing an empty session receiver"):
                receiver.close()
            return None
        slot = ReceiverSlot(entity_path(entity, subscription), lambda: receiver,
                            stall_after_s=self.options.stall_after_s,
                            min_wait_s=self.options.min_receive_wait_s, supervised=False)
        slot.is_session = True
        slot.receiver()
        self._renewer.register(receiver, receiver.session)
        return AzureSession(receiver, slot, track=self._track, on_close=self._sessions.release)

    # --- settling -------------------------------------------------------------------------
    def _settle(self, message: ReceivedMessage, what: str, action) -> None:
        with self._guard:
            inflight = self._inflight.pop(message.lock_token or "", None)
        if inflight is None:
            raise MessageLockLost(f"{what} {message.message_id}: not locked by this process")
        inflight.slot.settle(inflight.generation, f"{what} {message.message_id}",
                             lambda receiver: action(receiver, inflight.message))

    def complete(self, message: ReceivedMessage) -> None:
        self._settle(message, "completing", lambda r, m: r.complete_message(m))

    def abandon(self, message: ReceivedMessage) -> None:
        self._settle(message, "abandoning", lambda r, m: r.abandon_message(m))

    def dead_letter(self, message: ReceivedMessage, reason: str,
                    description: str | None = None) -> None:
        self._settle(message, "dead-lettering", lambda r, m: r.dead_letter_message(
            m, reason=reason, error_description=description))

    def renew_lock(self, message: ReceivedMessage) -> datetime:
        with self._guard:
            inflight = self._inflight.get(message.lock_token or "")
        if inflight is None:
            raise MessageLockLost(f"renewing {message.message_id}: not locked by this process")
        if inflight.slot.is_session:  # its lock is the session's: renew that instead
            return inflight.slot.session_locked_until(f"renewing {message.message_id}")
        until: list[datetime] = []
        inflight.slot.settle(inflight.generation, f"renewing {message.message_id}",
                             lambda r: until.append(r.renew_message_lock(inflight.message)))
        return until[0] if until[0].tzinfo else until[0].replace(tzinfo=UTC)

    # --- inspection and administration ------------------------------------------------
    def peek(self, entity: str, subscription: str | None = None, *, max_messages: int = 32,
             sub_queue: SubQueue = SubQueue.ACTIVE, from_sequence_number: int | None = None,
             ) -> list[ReceivedMessage]:
        slot = self._slot(entity, subscription, sub_queue)
        with port_errors(f"peeking {slot.entity_path}"):
            peeked = slot.receiver().peek_messages(
                max_message_count=max_messages, sequence_number=from_sequence_number or 1)
        return [from_service_bus(m, slot.entity_path) for m in peeked]

    def resubmit_dead_letter(self, entity: str, message_id: str,
                             subscription: str | None = None) -> str:
        from arcflare.bus.azure.resubmit import resubmit_dead_letter

        return resubmit_dead_letter(self, entity, message_id, subscription)

    def _admin(self):
        from arcflare.bus.admin import administration_client

        return administration_client(self.options, credential=self._credential)

    def stats(self) -> list[EntityStats]:
        from arcflare.bus.admin import entity_stats

        with port_errors("reading entity statistics"):
            return entity_stats(self._admin())

    def ensure_subscription(self, topic: str, subscription: str, rule: Rule | None) -> None:
        from arcflare.bus.admin import ensure_subscription

        with port_errors(f"creating subscription {topic}/{subscription}"):
            ensure_subscription(self._admin(), topic, subscription, (rule,) if rule else ())

    def close(self) -> None:
        self._renewer.close(wait=False)  # its workers notice the shutdown within a tick
        with self._guard:
            slots, self._slots = list(self._slots.values()), {}
        for closeable in [*slots, self._senders]:
            try:
                closeable.close()
            except Exception as exc:  # noqa: BLE001 - closing everything regardless
                log.info("close raised", error=repr(exc))
        self._client.close()
