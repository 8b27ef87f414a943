"""One SDK sender per entity, thrown away after any failure.

Each sender holds its own AMQP connection (the sync SDK shares none), is not
thread-safe, and after an error may be left with a broken link: the next send
opens a fresh one. A batch is one transfer in the 0x80013700 format, which the
broker accepts or refuses whole.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

from arcflare.bus.azure.errors import port_errors
from arcflare.bus.azure.receivers import log
from arcflare.bus.port import MessageNotFound, MessageTooLarge
from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusSender
from azure.servicebus import exceptions as sb

T = TypeVar("T")


class SenderPool:
    def __init__(self, client: ServiceBusClient) -> None:
        self._client = client
        self._guard = threading.Lock()
        self._senders: dict[str, tuple[ServiceBusSender, threading.Lock]] = {}

    def _sender(self, entity: str) -> tuple[ServiceBusSender, threading.Lock]:
        with self._guard:
            if entity not in self._senders:
                self._senders[entity] = (self._client.get_queue_sender(entity), threading.Lock())
            return self._senders[entity]

    def _drop(self, entity: str) -> None:
        with self._guard:
            sender, _ = self._senders.pop(entity, (None, None))
        if sender is not None:
            try:
                sender.close()
            except Exception as exc:  # noqa: BLE001 - it is being thrown away
                log.info("closing a failed sender raised", entity=entity, error=repr(exc))

    def use(self, entity: str, what: str, action: Callable[[ServiceBusSender], T]) -> T:
        sender, lock = self._sender(entity)
        try:
            with lock, port_errors(what):
                return action(sender)
        except (MessageTooLarge, MessageNotFound):
            raise  # refused before anything was sent, or answered: the link is fine
        except Exception:
            self._drop(entity)
            raise

    def send(self, entity: str, outgoing: Sequence[ServiceBusMessage]) -> None:
        def send(sender: ServiceBusSender) -> None:
            if len(outgoing) == 1:
                sender.send_messages(outgoing[0])
                return
            batch = sender.create_message_batch()
            for message in outgoing:
                try:
                    batch.add_message(message)
                except sb.MessageSizeExceededError:
                    raise MessageTooLarge(
                        f"{len(outgoing)} messages do not fit one batch for {entity} "
                        f"(max {batch.max_size_in_bytes} bytes); send them in parts"
                    ) from None
            sender.send_messages(batch)

        self.use(entity, f"sending to {entity}", send)

    def schedule(self, entity: str, message: ServiceBusMessage, enqueue_at: datetime) -> int:
        numbers = self.use(entity, f"scheduling on {entity}",
                           lambda s: s.schedule_messages(message, enqueue_at))
        return int(numbers[0])

    def cancel(self, entity: str, sequence_number: int) -> None:
        self.use(entity, f"cancelling on {entity}",
                 lambda s: s.cancel_scheduled_messages(sequence_number))

    def close(self) -> None:
        with self._guard:
            entities = list(self._senders)
        for entity in entities:
            self._drop(entity)
