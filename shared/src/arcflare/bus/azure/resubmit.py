"""Send one dead-lettered message back for another try (the port's contract).

Service Bus has no "move back": the dead letter is received (locked) from the
dead-letter sub-queue, a copy is sent under a new message id — the original id may
still be inside the entity's duplicate-detection window, which would drop the copy
silently — and only once that send is confirmed is the dead letter completed. If the
send fails the dead letter is abandoned, visible again at once; if completing fails
after the send, both copies exist and consumers' inboxes, keyed on
`original_message_id`, handle it once.

A subscription cannot be sent to (Service Bus sends to queues and topics only, and
resubmitting a subscription's dead letter to its subscription alone is not offered:
Azure/azure-service-bus#445, #706). The copy therefore goes through the topic marked
`resubmitted_to=<subscription>`, and every subscription's rules, as `arcflare bus init`
renders them (arcflare.bus.rules), admit a message so marked only when it names that
subscription.
"""
from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from arcflare.bus.azure.receivers import log
from arcflare.bus.port import (
    ORIGINAL_MESSAGE_ID,
    RESUBMITTED_TO,
    BusError,
    MessageNotFound,
    OutgoingMessage,
    ReceivedMessage,
    SubQueue,
    entity_path,
)

if TYPE_CHECKING:
    from arcflare.bus.azure.adapter import AzureServiceBus

#: set by the broker on a dead letter, not part of the message
_BROKER_PROPERTIES = {"DeadLetterReason", "DeadLetterErrorDescription"}
#: dead-letter queues are read a page at a time, this many pages at most
_PAGES = 20


def copy_of(dead: ReceivedMessage, subscription: str | None) -> OutgoingMessage:
    properties = {k: v for k, v in dead.application_properties.items()
                  if k not in _BROKER_PROPERTIES}
    properties.setdefault(ORIGINAL_MESSAGE_ID, dead.message_id)  # the first original stays
    if subscription:
        properties[RESUBMITTED_TO] = subscription
    return OutgoingMessage(
        body=dead.body, message_id=str(uuid.uuid4()), subject=dead.subject,
        correlation_id=dead.correlation_id, session_id=dead.session_id,
        content_type=dead.content_type, application_properties=properties)


def resubmit_dead_letter(bus: AzureServiceBus, entity: str, message_id: str,
                         subscription: str | None) -> str:
    held: list[ReceivedMessage] = []
    try:
        for _ in range(_PAGES):
            page = bus.receive(entity, subscription, max_messages=32, max_wait=1.0,
                               sub_queue=SubQueue.DEAD_LETTER)
            if not page:
                break
            held += page
            match = next((m for m in page if m.message_id == message_id), None)
            if match is not None:
                held.remove(match)
                return _move(bus, entity, match, subscription)
        raise MessageNotFound(f"no dead-lettered message {message_id} on "
                              f"{entity_path(entity, subscription)}")
    finally:
        for other in held:
            _give_back(bus, other)


def _move(bus: AzureServiceBus, entity: str, dead: ReceivedMessage,
          subscription: str | None) -> str:
    copy = copy_of(dead, subscription)
    try:
        bus.send(entity, [copy])
    except BaseException:
        _give_back(bus, dead)
        raise
    try:
        bus.complete(dead)
    except BusError as exc:
        # the copy is out: a second resubmit would make a third; the inbox absorbs two
        log.warning("resubmitted, but the dead letter could not be completed and stays",
                    message_id=dead.message_id, copy_id=copy.message_id, error=str(exc))
    return copy.message_id


def _give_back(bus: AzureServiceBus, message: ReceivedMessage) -> None:
    try:
        bus.abandon(message)
    except Exception as exc:  # noqa: BLE001 - its lock expires anyway
        log.info("giving back a dead-lettered message failed", error=repr(exc))


__all__ = ["copy_of", "resubmit_dead_letter"]
