"""What a consumer says when it refuses a message or gives up on it, always bounded in size.

A refusal of a huge or hostile message must itself be small and valid, or the outbox
could not send it (and everything behind it would wait): details are clipped, field errors
capped with their count kept, and a stand-in envelope is built from whatever of the
message's routing properties is valid.
"""
from __future__ import annotations

import re

from arcflare.bus.port import ReceivedMessage
from arcflare.contracts.base import Message
from arcflare.contracts.envelope import MAX_ID_LENGTH, Envelope
from arcflare.contracts.events import (
    MAX_DETAIL,
    MAX_FIELD_ERRORS,
    CommandFailed,
    CommandRejected,
    FieldError,
    MessageRefused,
)
from arcflare.runtime.admission import FORBIDDEN, UNAUTHENTICATED, Refused, inbox_id

RETRIES_EXHAUSTED = "RetriesExhausted"
#: refusals a resubmit cannot cure: the same proof gives the same answer
TRUST_REASONS = frozenset({UNAUTHENTICATED, FORBIDDEN})
_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,63}$")
_FEDERATION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_FIELD_CHARS = 200


def clip(text: str | None, limit: int = MAX_DETAIL) -> str:
    # a field name or value echoed from a hostile body may hold a lone surrogate, which no
    # event could carry
    text = (text or "").encode("utf-8", "replace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def field_errors(errors: list[dict[str, str]]) -> list[FieldError]:
    return [FieldError(field=clip(str(e.get("field", "")), _FIELD_CHARS),
                       problem=clip(str(e.get("problem", "")), _FIELD_CHARS))
            for e in errors[:MAX_FIELD_ERRORS]]


def announcements(refused: Refused, cause: Envelope, received: ReceivedMessage, *,
                  command: bool, consumer: str) -> list[Message]:
    """CommandRejected for a command; MessageRefused for any other message whose proof or
    sender failed; nothing for an event that is merely malformed (the dead letter says it)."""
    detail = clip(refused.detail)
    proven = refused.principal.id if refused.principal else None
    if command:
        return [CommandRejected(
            federation=cause.federation, command_type=cause.type,
            command_id=inbox_id(received), reason=refused.reason, detail=detail,
            errors=field_errors(refused.errors),
            errors_total=len(refused.errors) if len(refused.errors) > MAX_FIELD_ERRORS else None,
            claimed_by=refused.claimed_by, proven_by=proven,
        )]
    if refused.reason in TRUST_REASONS:
        return [MessageRefused(
            federation=cause.federation, consumer=consumer, message_type=cause.type,
            message_id=inbox_id(received), reason=refused.reason, detail=detail,
            claimed_by=refused.claimed_by, proven_by=proven,
        )]
    return []


def command_failed(envelope: Envelope, received: ReceivedMessage, detail: str) -> CommandFailed:
    return CommandFailed(federation=envelope.federation, command_type=envelope.type,
                         command_id=inbox_id(received), reason="retries_exhausted",
                         detail=clip(detail), deliveries=received.delivery_count)


def stand_in_envelope(received: ReceivedMessage) -> Envelope:
    """What can be read off a message that has no valid envelope, so that its refusal still
    names it as the cause. Every field is checked or clipped: this must never fail."""
    props = {_text(k): _text(v) for k, v in (received.application_properties or {}).items()}
    type_name = props.get("type") or _text(received.subject) or ""
    federation = props.get("federation") or ""
    return Envelope(
        message_id=clip(received.message_id, MAX_ID_LENGTH) or "unknown",
        type=type_name if _TYPE.match(type_name) else "unknown",
        correlation_id=clip(_text(received.correlation_id) or received.message_id,
                            MAX_ID_LENGTH) or None,
        federation=federation if _FEDERATION.match(federation) else None,
    )


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)
