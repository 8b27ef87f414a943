"""Port messages ⇄ azure-servicebus messages.

The SDK hands received application properties back with bytes keys (and bytes
values for strings), bodies as a generator of Data sections, and a subject or
correlation id as str or bytes depending on the path. Everything is normalised
here so `arcflare.bus.codec` sees exactly what the embedded broker gives it; a
malformed message from another producer then fails in the codec, and the runtime
dead-letters it the same way on both brokers.
"""
from __future__ import annotations

from datetime import UTC, datetime

from arcflare.bus.port import OutgoingMessage, PropertyValue, ReceivedMessage
from azure.servicebus import ServiceBusMessage, ServiceBusReceivedMessage

#: with azure-core tracing on, the SDK stamps its own span's context under these bytes keys
#: unless they are present (dict.setdefault): given as bytes, the trace the message already
#: carries (the handler's, kept in the outbox) is the one that travels
_TRACE_KEYS = {"traceparent": b"traceparent", "Diagnostic-Id": b"Diagnostic-Id",
               "tracestate": b"tracestate"}


def to_service_bus(message: OutgoingMessage) -> ServiceBusMessage:
    return ServiceBusMessage(
        message.body,
        message_id=message.message_id,
        subject=message.subject,
        correlation_id=message.correlation_id,
        session_id=message.session_id,
        content_type=message.content_type,
        application_properties={_TRACE_KEYS.get(k, k): v
                                for k, v in message.application_properties.items()} or None,
        time_to_live=message.time_to_live,
        scheduled_enqueue_time_utc=message.scheduled_enqueue_time,
    )


def text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def _property(value: object) -> PropertyValue:
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return text(value) or ""


def application_properties(raw: dict | None) -> dict[str, PropertyValue]:
    """bytes keys and values from the wire become str; numbers and booleans stay."""
    return {text(k) or "": _property(v) for k, v in (raw or {}).items()}


def body_bytes(message: ServiceBusReceivedMessage) -> bytes:
    """The Data sections joined; a value or sequence body (other producers) as its text."""
    body = message.body
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    if isinstance(body, str):
        return body.encode()
    try:
        parts = list(body)
    except TypeError:
        return text(body).encode() if body is not None else b""
    if all(isinstance(p, bytes | bytearray | memoryview) for p in parts):
        return b"".join(bytes(p) for p in parts)
    return str(parts).encode()


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def from_service_bus(message: ServiceBusReceivedMessage, entity_path: str) -> ReceivedMessage:
    lock_token = None
    locked_until = None
    try:
        lock_token = str(message.lock_token) if message.lock_token else None
        locked_until = _utc(message.locked_until_utc)
    except (AttributeError, TypeError):
        pass  # peeked messages carry no lock
    return ReceivedMessage(
        body=body_bytes(message),
        message_id=text(message.message_id) or "",
        subject=text(message.subject),
        correlation_id=text(message.correlation_id),
        session_id=text(message.session_id),
        content_type=text(message.content_type),
        application_properties=application_properties(message.application_properties),
        sequence_number=int(message.sequence_number or 0),
        delivery_count=int(message.delivery_count or 0),
        enqueued_time=_utc(message.enqueued_time_utc) or datetime.now(UTC),
        entity_path=entity_path,
        lock_token=lock_token,
        locked_until=locked_until,
        expires_at=_utc(message.expires_at_utc),
        dead_letter_reason=text(message.dead_letter_reason),
        dead_letter_error_description=text(message.dead_letter_error_description),
        dead_letter_source=text(message.dead_letter_source),
    )
