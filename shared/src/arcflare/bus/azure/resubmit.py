"""Move one dead-lettered message back to where it came from.

Service Bus has no "resubmit": the copy is received from the dead-letter
sub-queue, sent again, and only then completed (a crash in between leaves a
duplicate, which the consumers' inboxes absorb). A subscription's copy is sent to
its topic with `resubmitted_to` naming the subscription; note that duplicate
detection on the topic drops it if the original id is still inside the window.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from arcflare.bus.azure.receivers import log
from arcflare.bus.port import EntityNotFound, OutgoingMessage, SubQueue

if TYPE_CHECKING:
    from arcflare.bus.azure.adapter import AzureServiceBus

_BROKER_PROPERTIES = {"DeadLetterReason", "DeadLetterErrorDescription"}


def resubmit_dead_letter(bus: AzureServiceBus, entity: str, message_id: str,
                         subscription: str | None) -> None:
    held = []
    try:
        for _ in range(20):  # bounded: a dead-letter queue is read a page at a time
            page = bus.receive(entity, subscription, max_messages=32, max_wait=1.0,
                               sub_queue=SubQueue.DEAD_LETTER)
            if not page:
                break
            match = next((m for m in page if m.message_id == message_id), None)
            held.extend(m for m in page if m is not match)
            if match is not None:
                props = {k: v for k, v in match.application_properties.items()
                         if k not in _BROKER_PROPERTIES}
                if subscription:
                    props["resubmitted_to"] = subscription
                bus.send(entity, [OutgoingMessage(
                    body=match.body, message_id=match.message_id, subject=match.subject,
                    correlation_id=match.correlation_id, session_id=match.session_id,
                    content_type=match.content_type, application_properties=props)])
                bus.complete(match)
                return
        raise EntityNotFound(f"no dead-lettered message {message_id} on "
                             f"{entity}{'/' + subscription if subscription else ''}")
    finally:
        for other in held:
            try:
                bus.abandon(other)
            except Exception as exc:  # noqa: BLE001 - its lock expires anyway
                log.info("giving back a dead-lettered message failed", error=repr(exc))


__all__ = ["resubmit_dead_letter"]
