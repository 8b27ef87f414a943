"""Message contracts: commands, events, the envelope and the topology. No I/O here."""
from arcflare.contracts.base import (
    SCHEMA,
    Command,
    Event,
    Message,
    Telemetry,
    UnknownMessageType,
    message_class,
    message_types,
)
from arcflare.contracts.envelope import Envelope, field_errors, new_id

__all__ = [
    "SCHEMA", "Command", "Envelope", "Event", "Message", "Telemetry", "UnknownMessageType",
    "field_errors", "message_class", "message_types", "new_id",
]
