"""Admission: what a received message must prove before any handler sees it
(docs/architecture.md, "Trust").

In order, each failure final for that message:
1. its routing properties are readable and bounded (codec.wire_of);
2. its signature verifies: the certificate chains to a trust anchor, is valid now, and
   signed exactly these envelope fields and this body (Unauthenticated otherwise);
3. `issued_by` is the signer's principal (Unauthenticated);
4. the body parses into a known, valid message (InvalidJson, unknown_type, invalid, ...);
5. the envelope's federation and site are the payload's own (Forbidden);
6. the permission table lets this principal send this type (Forbidden);
7. a command is fresh: issued within `command_max_age_s`; nothing is dated in the future
   beyond `clock_skew_s` (Forbidden).
The role policy (which person may order what in a federation) comes after, in the
handler's unit of work, because it needs the service's state.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from arcflare.bus.codec import DecodeError, envelope_of, is_text, wire_of
from arcflare.bus.port import ORIGINAL_MESSAGE_ID, ReceivedMessage
from arcflare.contracts.base import Message, UnknownMessageType
from arcflare.contracts.envelope import MAX_ID_LENGTH, Envelope, describe_errors, field_errors
from arcflare.contracts.senders import Sender, sender_refusal
from arcflare.trust.errors import Unauthenticated
from arcflare.trust.principals import Principal
from arcflare.trust.verifier import Verifier
from pydantic import ValidationError

UNAUTHENTICATED = "Unauthenticated"
FORBIDDEN = "Forbidden"


class Refused(Exception):
    """A message that can never be admitted; reason is the dead-letter reason."""

    def __init__(self, reason: str, detail: str, errors: list[dict[str, str]] | None = None, *,
                 envelope: Envelope | None = None, principal: Principal | None = None,
                 claimed_by: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.errors = errors or []
        self.envelope = envelope
        self.principal = principal
        self.claimed_by = claimed_by if claimed_by is not None else (
            envelope.issued_by if envelope else None)


@dataclass(frozen=True)
class Admitted:
    envelope: Envelope
    message: Message
    principal: Principal


@dataclass
class Admission:
    verifier: Verifier
    command_max_age_s: float = 600.0
    clock_skew_s: float = 300.0
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def admit(self, received: ReceivedMessage, *, command: bool) -> Admitted:
        try:
            wire = wire_of(received)
        except DecodeError as exc:
            raise Refused(exc.reason, exc.description) from None
        claimed = wire.properties.get("issued_by")
        principal = self._prove(wire, claimed)
        try:
            envelope = envelope_of(wire, received)
        except DecodeError as exc:
            raise Refused(exc.reason, exc.description, principal=principal,
                          claimed_by=claimed) from None
        message = self._open(envelope, principal)
        self._check_sender(envelope, message, principal)
        self._check_time(envelope, principal, command=message.category == "command")
        return Admitted(envelope, message, principal)

    def _prove(self, wire, claimed: str | None) -> Principal:
        if not wire.signature:
            raise Refused(UNAUTHENTICATED, "the message carries no signature: every message "
                          "must be signed by its sender's ArcFlare identity", claimed_by=claimed)
        try:
            principal = self.verifier.verify(wire.signature, wire.signed_fields(), wire.body,
                                             wire.proof, wire.chain)
        except Unauthenticated as exc:
            raise Refused(UNAUTHENTICATED, exc.description, claimed_by=claimed) from None
        if claimed != principal.id:
            raise Refused(UNAUTHENTICATED, f"issued_by {claimed!r} is not the signer "
                          f"{principal.id!r}", principal=principal, claimed_by=claimed)
        return principal

    @staticmethod
    def _open(envelope: Envelope, principal: Principal) -> Message:
        try:
            return envelope.open()
        except UnknownMessageType as exc:
            raise Refused("unknown_type", str(exc), envelope=envelope,
                          principal=principal) from None
        except ValidationError as exc:
            errors = field_errors(exc)
            detail = describe_errors(errors[:20])
            raise Refused("invalid", detail, errors, envelope=envelope,
                          principal=principal) from None

    @staticmethod
    def _check_sender(envelope: Envelope, message: Message, principal: Principal) -> None:
        for name in ("federation", "site"):
            said = getattr(message, name, None)
            if said is not None and not isinstance(said, str):
                continue
            if said != getattr(envelope, name):
                raise Refused(FORBIDDEN, f"the envelope's {name} {getattr(envelope, name)!r} "
                              f"is not the payload's {said!r}", envelope=envelope,
                              principal=principal)
        sender = Sender(principal.kind, principal.name, principal.federation, principal.site)
        refusal = sender_refusal(sender, envelope.type, message.category,
                                 envelope.federation, envelope.site)
        if refusal:
            raise Refused(FORBIDDEN, refusal, envelope=envelope, principal=principal)

    def _check_time(self, envelope: Envelope, principal: Principal, *, command: bool) -> None:
        age = (self.clock() - envelope.occurred_at).total_seconds()
        if age < -self.clock_skew_s:
            raise Refused(FORBIDDEN, f"occurred_at {envelope.occurred_at.isoformat()} is "
                          f"{-age:.0f} s in the future", envelope=envelope, principal=principal)
        if command and age > self.command_max_age_s:
            raise Refused(FORBIDDEN, f"the command is stale: issued {age:.0f} s ago, commands "
                          f"are accepted for {self.command_max_age_s:.0f} s",
                          envelope=envelope, principal=principal)


def inbox_id(received: ReceivedMessage) -> str:
    """The id a message is remembered by: a resubmitted copy is the original message."""
    props = received.application_properties or {}
    for key in (ORIGINAL_MESSAGE_ID, ORIGINAL_MESSAGE_ID.encode()):
        value = props.get(key)  # type: ignore[call-overload]
        if value:
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            # a hostile one (over-long, not text) is refused at admission: remember that
            # refusal under the broker's own id, which any database can hold
            if len(text) <= MAX_ID_LENGTH and is_text(text):
                return text
    return received.message_id
