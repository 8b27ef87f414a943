"""The envelope: what every message carries besides its payload (docs/architecture.md §2).

The envelope maps one-to-one onto Service Bus message fields and application
properties, so the embedded broker and Azure carry exactly the same thing.
"""
from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from arcflare.contracts.base import SCHEMA, Message, message_class
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

MAX_ID_LENGTH = 128
MAX_MESSAGE_BYTES = 256 * 1024


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    message_id: str = Field(default_factory=new_id, min_length=1, max_length=MAX_ID_LENGTH)
    type: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    schema_: str = Field(default=SCHEMA, alias="schema")
    correlation_id: str | None = Field(default=None, max_length=MAX_ID_LENGTH)
    causation_id: str | None = Field(default=None, max_length=MAX_ID_LENGTH)
    federation: str | None = Field(default=None, max_length=MAX_ID_LENGTH)
    site: str | None = Field(default=None, max_length=MAX_ID_LENGTH)
    #: the principal that signed the message (arcflare.trust): a person's email,
    #: "service:<name>", "site:<federation>/<site>" or "bridge:<federation>"
    issued_by: str | None = Field(default=None, max_length=MAX_ID_LENGTH * 2)
    #: the person a service acted for: the proven issuer of the command that started the
    #: flow, carried forward by the runtime (None for what a service does on its own)
    on_behalf_of: str | None = Field(default=None, max_length=MAX_ID_LENGTH * 2)
    occurred_at: datetime = Field(default_factory=utcnow)
    payload: dict[str, Any] = Field(default_factory=dict)

    @field_validator("occurred_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    @classmethod
    def wrap(
        cls,
        message: Message,
        *,
        message_id: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        issued_by: str | None = None,
        on_behalf_of: str | None = None,
        federation: str | None = None,
        site: str | None = None,
    ) -> Envelope:
        """Envelope a message; federation and site default to the payload's own fields."""
        mid = message_id or new_id()
        return cls(
            message_id=mid,
            type=message.type_name(),
            correlation_id=correlation_id or mid,
            causation_id=causation_id,
            federation=federation or getattr(message, "federation", None),
            site=site or getattr(message, "site", None),
            issued_by=issued_by,
            on_behalf_of=on_behalf_of,
            payload=message.model_dump(mode="json"),
        )

    def open(self) -> Message:
        """The typed payload. Raises UnknownMessageType or pydantic's ValidationError."""
        return message_class(self.type).model_validate(self.payload)

    def body(self) -> bytes:
        return json.dumps(self.payload, separators=(",", ":"), ensure_ascii=False).encode()

    def application_properties(self) -> dict[str, str]:
        props = {
            "type": self.type,
            "schema": self.schema_,
            "occurred_at": self.occurred_at.isoformat(),
        }
        for key in ("causation_id", "federation", "site", "issued_by", "on_behalf_of"):
            value = getattr(self, key)
            if value is not None:
                props[key] = value
        return props


def describe_errors(errors: list[dict[str, str]], sep: str = "; ") -> str:
    """Field errors as one line a person reads: "field: problem; field: problem"."""
    return sep.join(f"{e['field']}: {e['problem']}" for e in errors)


def field_errors(error: ValidationError) -> list[dict[str, str]]:
    """Pydantic errors as [{field, problem}] — what CommandRejected carries."""
    return [
        {"field": ".".join(str(p) for p in e["loc"]) or "(message)", "problem": e["msg"]}
        for e in error.errors(include_url=False)
    ]
