"""Envelope ⇄ bus message mapping (DESIGN §3), the same for every adapter.

Decoding failures are permanent: the consumer dead-letters them with the
reason carried by DecodeError and never retries.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from arcflare.bus.port import OutgoingMessage, ReceivedMessage
from arcflare.contracts.envelope import MAX_MESSAGE_BYTES, Envelope
from pydantic import ValidationError


class DecodeError(ValueError):
    """A message that can never be handled; `reason` is the dead-letter reason."""

    def __init__(self, reason: str, description: str) -> None:
        super().__init__(f"{reason}: {description}")
        self.reason = reason
        self.description = description


def to_outgoing(
    envelope: Envelope,
    *,
    session: bool = False,
    time_to_live: timedelta | None = None,
    scheduled_enqueue_time: datetime | None = None,
) -> OutgoingMessage:
    body = envelope.body()
    if len(body) > MAX_MESSAGE_BYTES:
        raise ValueError(
            f"{envelope.type} payload is {len(body)} bytes; the limit is {MAX_MESSAGE_BYTES}"
        )
    return OutgoingMessage(
        body=body,
        message_id=envelope.message_id,
        subject=envelope.type,
        correlation_id=envelope.correlation_id,
        session_id=envelope.federation if session else None,
        content_type="application/json",
        application_properties=dict(envelope.application_properties()),
        time_to_live=time_to_live,
        scheduled_enqueue_time=scheduled_enqueue_time,
    )


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def from_received(message: ReceivedMessage) -> Envelope:
    """The envelope of a received message. Raises DecodeError for anything malformed."""
    props = {_text(k): _text(v) for k, v in (message.application_properties or {}).items()}
    type_name = props.get("type") or message.subject
    if not type_name:
        raise DecodeError("MissingType", "the message has neither a 'type' property nor a subject")
    try:
        payload = json.loads(message.body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DecodeError("InvalidBody", f"the body is not UTF-8 text: {exc}") from None
    except json.JSONDecodeError as exc:
        raise DecodeError("InvalidJson", f"the body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise DecodeError("InvalidJson", "the body must be a JSON object")
    try:
        return Envelope(
            message_id=message.message_id,
            type=type_name,
            schema=props.get("schema") or "arcflare.v1",
            correlation_id=message.correlation_id,
            causation_id=props.get("causation_id"),
            federation=props.get("federation"),
            site=props.get("site"),
            issued_by=props.get("issued_by"),
            on_behalf_of=props.get("on_behalf_of"),
            occurred_at=props.get("occurred_at") or message.enqueued_time or datetime.now(UTC),
            payload=payload,
        )
    except ValidationError as exc:
        raise DecodeError("InvalidEnvelope", str(exc)) from None
